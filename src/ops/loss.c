/*
 * loss.c — softmax cross-entropy, mean over the batch, with optional label smoothing: PyTorch's
 * CrossEntropyLoss(label_smoothing=eps), per sample (1-eps)*nll + eps*mean_k(-log p_k).
 */
#include "resnet.h"

#include <math.h>

/* probs (n,k) = softmax(logits (n,k)); returns the mean loss, or NaN if a label is outside
 * [0, k). The log-softmax is computed stably (max subtracted) in double. */
float rn_softmax_xent_forward(float *probs, const float *logits, const int *labels, int n,
                              int k, float smoothing) {
    double total = 0;
    bool bad_label = false;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        float *p = probs + (size_t)i * k;
        double max = z[0];
        for (int j = 1; j < k; j++)
            if (z[j] > max) max = z[j];
        double sumexp = 0, sumz = 0;
        for (int j = 0; j < k; j++) {
            sumexp += exp(z[j] - max);
            sumz += z[j];
        }
        const double lse = max + log(sumexp); /* log sum exp z */
        for (int j = 0; j < k; j++) p[j] = (float)exp(z[j] - lse);
        if (labels[i] < 0 || labels[i] >= k) {
            bad_label = true;
            continue;
        }
        const double nll = lse - z[labels[i]];
        const double smooth = lse - sumz / k; /* mean_j(-log p_j) */
        total += (1.0 - smoothing) * nll + smoothing * smooth;
    }
    return bad_label ? NAN : (float)(total / n);
}

/* dlogits (n,k) = (probs - target) / n * dloss, target = (1-eps)*onehot + eps/k. Written, not
 * accumulated. A label outside [0, k) contributes no one-hot term. */
void rn_softmax_xent_backward(float *dlogits, const float *probs, const int *labels, int n,
                              int k, float smoothing, float dloss) {
    const float scale = dloss / (float)n;
    const float off = smoothing / (float)k;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k;
        float *g = dlogits + (size_t)i * k;
        for (int j = 0; j < k; j++) {
            float target = j == labels[i] ? (1.0f - smoothing) + off : off;
            g[j] = (p[j] - target) * scale;
        }
    }
}
