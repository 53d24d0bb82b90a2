/*
 * sgd.c — stochastic gradient descent with momentum, Nesterov and weight decay, exactly as
 * torch.optim.SGD computes it (dampening 0), over the model's contiguous parameter block.
 */
#include "exec/step.h"

void rn_sgd_step(rn_model *m, float *velocity, float lr, float momentum, float wd, bool nesterov,
                 bool wd_skip_bn) {
    for (int t = 0; t < m->n_tensors; t++) {
        const rn_tensor_entry *e = &m->tensors[t];
        if (e->info.kind != RN_TENSOR_PARAM) continue;
        float decay = (wd_skip_bn && e->info.is_bn_or_bias) ? 0.0f : wd;
        float *w = m->params + e->off, *g = m->grads + e->off, *v = velocity + e->off;
        size_t n = e->info.numel;
        for (size_t i = 0; i < n; i++) {
            float d = g[i];
            if (decay != 0.0f) d += decay * w[i];
            if (momentum != 0.0f) {
                v[i] = momentum * v[i] + d;
                d = nesterov ? d + momentum * v[i] : v[i];
            }
            w[i] -= lr * d;
        }
    }
}
