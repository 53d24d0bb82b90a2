/*
 * test_parity_models.c — whole models against PyTorch (tools/gen_reference.py):
 *
 *  resnet20 (akamaster): weights loaded from tests/data/resnet20_torch.safetensors, a file
 *    holding a PyTorch state_dict; eval and train forward, loss, the input gradient, every
 *    parameter gradient and the BN buffers after one train step, all in full.
 *  resnet18 (kuangliu): weights from the hash fill both sides compute (tu_fill_hash); logits,
 *    loss and input gradient in full, each parameter gradient as its L2 norm and 256 sampled
 *    elements, BN buffers in full.
 *
 * Both run on the reference backend. Tolerances are in testutil.h; each check prints its max.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void read_ref(rn_safetensors *st, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tu_data_dir(), file);
    TU_OK(rn_safetensors_read(st, path));
    const char *v = rn_safetensors_meta(st, "torch_version");
    printf("reference: %s (torch %s)\n", path, v ? v : "?");
}

static const char *prefixed(const char *prefix, const char *name) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s%s", prefix, name);
    return buf;
}

/* rn_model_tensor order and names must be PyTorch's state_dict order ("state_dict_keys"). */
static void check_state_order(const rn_model *m, const rn_safetensors *ref) {
    const char *keys = rn_safetensors_meta(ref, "state_dict_keys");
    assert_non_null(keys);
    int n = rn_model_num_tensors(m), i = 0;
    const char *p = keys;
    for (; *p; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (i >= n) fail_msg("model has %d state tensors, PyTorch more", n);
        const char *name = rn_model_tensor(m, i)->name;
        if (strlen(name) != len || strncmp(name, p, len) != 0)
            fail_msg("state tensor %d is %s, PyTorch has %.*s", i, name, (int)len, p);
        p = comma ? comma + 1 : p + len;
    }
    if (i != n) fail_msg("model has %d state tensors, PyTorch %d", n, i);
    printf("    state_dict order: %d tensors match\n", n);
}

/* Forward-tolerance check of every BUFFER against after.<name>, counters == expect. */
static void check_buffers(const rn_model *m, const rn_safetensors *ref, int64_t expect_count) {
    double worst = 0;
    const char *worst_name = "-";
    int nbuf = 0;
    for (int i = 0; i < rn_model_num_tensors(m); i++) {
        const rn_tensor_info *ti = rn_model_tensor(m, i);
        if (ti->kind == RN_TENSOR_COUNTER) {
            double want = tu_st_scalar(ref, prefixed("after.", ti->name));
            if (*ti->counter != (int64_t)want || *ti->counter != expect_count)
                fail_msg("%s = %lld, PyTorch %.0f", ti->name, (long long)*ti->counter, want);
            continue;
        }
        if (ti->kind != RN_TENSOR_BUFFER) continue;
        size_t n;
        float *r = tu_st_floats(ref, prefixed("after.", ti->name), &n);
        assert_int_equal(n, ti->numel);
        double e = tu_max_rel_diff(ti->data, r, n);
        free(r);
        nbuf++;
        if (!(e <= worst)) worst = e, worst_name = ti->name;
        if (!(e <= TU_FWD_TOL)) fail_msg("%s after a train step: %.3g exceeds %.0e", ti->name, e, TU_FWD_TOL);
    }
    printf("    %-40s max |a-b|/(1+|ref|)        = %.3g (%s); counters = %lld\n",
           "BN buffers after train step", worst, worst_name, (long long)expect_count);
    assert_true(nbuf > 0);
}

typedef struct {
    rn_model *m;
    rn_ctx *ctx;
    int n, classes;
    float *x;
    int *labels;
    float *dlogits;
} run_state;

/* Eval forward, train forward, loss and backward, each checked against the reference. */
static void run_passes(run_state *r, const rn_safetensors *ref) {
    size_t nx, nl;
    r->x = tu_st_floats(ref, "x", &nx);
    r->labels = tu_st_ints(ref, "labels", NULL);
    float *ref_eval = tu_st_floats(ref, "logits_eval", &nl);
    float *ref_train = tu_st_floats(ref, "logits", NULL);
    float *ref_dx = tu_st_floats(ref, "dx", NULL);
    r->classes = (int)(nl / (size_t)r->n);
    assert_int_equal(rn_model_get_opts(r->m).num_classes, r->classes);

    TU_OK(rn_ctx_create(&r->ctx, "reference", 0));
    TU_OK(rn_model_reserve(r->m, r->ctx, r->n));
    const float *logits;
    TU_OK(rn_model_forward(r->m, r->ctx, r->x, r->n, RN_MODE_EVAL, &logits));
    tu_check_fwd("logits (eval)", logits, ref_eval, nl);
    TU_OK(rn_model_forward(r->m, r->ctx, r->x, r->n, RN_MODE_TRAIN, &logits));
    tu_check_fwd("logits (train)", logits, ref_train, nl);

    float *probs = malloc(nl * sizeof(float));
    r->dlogits = malloc(nl * sizeof(float));
    float loss = rn_softmax_xent_forward(probs, logits, r->labels, r->n, r->classes, 0.0f);
    float ref_loss = (float)tu_st_scalar(ref, "loss");
    tu_check_fwd("loss", &loss, &ref_loss, 1);
    rn_softmax_xent_backward(r->dlogits, probs, r->labels, r->n, r->classes, 0.0f, 1.0f);
    rn_model_zero_grad(r->m);
    TU_OK(rn_model_backward(r->m, r->ctx, r->dlogits));
    tu_check_grad("dx (input gradient)", rn_model_input_grad(r->m), ref_dx, nx);
    free(probs);
    free(ref_eval);
    free(ref_train);
    free(ref_dx);
}

static void free_run(run_state *r) {
    rn_ctx_free(r->ctx);
    rn_model_free(r->m);
    free(r->x);
    free(r->labels);
    free(r->dlogits);
}

/* ---- resnet20 ------------------------------------------------------------------------------ */

static void test_resnet20(void **state) {
    rn_safetensors ref;
    read_ref(&ref, "ref_resnet20.safetensors");
    run_state r = {.n = 4};
    TU_OK(rn_model_create(&r.m, "resnet20", NULL, 0));
    assert_int_equal(rn_model_param_count(r.m), 269722);
    check_state_order(r.m, &ref);

    /* A weights file as PyTorch writes it; every tensor must arrive bit for bit. */
    char path[4096];
    snprintf(path, sizeof path, "%s/resnet20_torch.safetensors", tu_data_dir());
    TU_OK(rn_model_load(r.m, path, NULL));
    for (int i = 0; i < rn_model_num_tensors(r.m); i++) {
        const rn_tensor_info *ti = rn_model_tensor(r.m, i);
        if (ti->kind == RN_TENSOR_COUNTER) {
            assert_int_equal(*ti->counter, (int64_t)tu_st_scalar(&ref, prefixed("w.", ti->name)));
            continue;
        }
        size_t n;
        float *w = tu_st_floats(&ref, prefixed("w.", ti->name), &n);
        assert_int_equal(n, ti->numel);
        if (memcmp(w, ti->data, n * sizeof(float)) != 0) fail_msg("%s differs after loading", ti->name);
        free(w);
    }
    printf("    loaded %s: every tensor bit-identical to the state_dict\n", path);

    run_passes(&r, &ref);

    double worst = 0;
    const char *worst_name = "-";
    for (int i = 0; i < rn_model_num_tensors(r.m); i++) {
        const rn_tensor_info *ti = rn_model_tensor(r.m, i);
        if (ti->kind != RN_TENSOR_PARAM) continue;
        size_t n;
        float *g = tu_st_floats(&ref, prefixed("grad.", ti->name), &n);
        assert_int_equal(n, ti->numel);
        double e = tu_grad_err(ti->grad, g, n);
        free(g);
        if (!(e <= worst)) worst = e, worst_name = ti->name;
        if (!(e <= TU_GRAD_TOL)) fail_msg("grad of %s: %.3g exceeds %.0e", ti->name, e, TU_GRAD_TOL);
    }
    printf("    %-40s max |a-b|/(1e-3+max|ref|)  = %.3g (%s)\n", "parameter gradients (all)",
           worst, worst_name);
    check_buffers(r.m, &ref, 1);
    free_run(&r);
    rn_safetensors_free(&ref);
}

/* ---- resnet18 ------------------------------------------------------------------------------ */

static void test_resnet18(void **state) {
    rn_safetensors ref;
    read_ref(&ref, "ref_resnet18.safetensors");
    run_state r = {.n = 2};
    TU_OK(rn_model_create(&r.m, "resnet18", NULL, 0));
    assert_int_equal(rn_model_param_count(r.m), 11173962);
    check_state_order(r.m, &ref);

    tu_fill_hash_model(r.m);
    int nfill = 0;
    for (int i = 0; i < rn_model_num_tensors(r.m); i++) {
        const rn_tensor_info *ti = rn_model_tensor(r.m, i);
        if (ti->kind == RN_TENSOR_COUNTER) continue;
        size_t m;
        float *s = tu_st_floats(&ref, prefixed("fill.", ti->name), &m);
        for (size_t j = 0; j < m; j++) {
            float v = ti->data[j * ti->numel / m];
            if (memcmp(&v, &s[j], sizeof v) != 0)
                fail_msg("hash fill of %s[%zu] = %.9g, Python %.9g", ti->name, j * ti->numel / m,
                         v, s[j]);
        }
        free(s);
        nfill++;
    }
    printf("    hash fill: sampled values of %d tensors bit-identical to Python's\n", nfill);

    run_passes(&r, &ref);

    double worst_norm = 0, worst_sample = 0;
    const char *wn = "-", *ws = "-";
    for (int i = 0; i < rn_model_num_tensors(r.m); i++) {
        const rn_tensor_info *ti = rn_model_tensor(r.m, i);
        if (ti->kind != RN_TENSOR_PARAM) continue;
        double ss = 0;
        for (size_t j = 0; j < ti->numel; j++) ss += (double)ti->grad[j] * ti->grad[j];
        double ref_norm = tu_st_scalar(&ref, prefixed("gradnorm.", ti->name));
        double en = fabs(sqrt(ss) - ref_norm) / (1e-3 + ref_norm);
        if (!(en <= worst_norm)) worst_norm = en, wn = ti->name;
        if (!(en <= TU_GRAD_TOL))
            fail_msg("grad norm of %s: %.6g, PyTorch %.6g", ti->name, sqrt(ss), ref_norm);
        size_t m;
        float *s = tu_st_floats(&ref, prefixed("gradsample.", ti->name), &m);
        assert_int_equal(m, ti->numel < 256 ? ti->numel : 256);
        float *mine = malloc(m * sizeof(float));
        for (size_t j = 0; j < m; j++) mine[j] = ti->grad[j * ti->numel / m];
        double es = tu_grad_err(mine, s, m);
        free(mine);
        free(s);
        if (!(es <= worst_sample)) worst_sample = es, ws = ti->name;
        if (!(es <= TU_GRAD_TOL))
            fail_msg("sampled grad of %s: %.3g exceeds %.0e", ti->name, es, TU_GRAD_TOL);
    }
    printf("    %-40s |a-b|/(1e-3+|ref|)          = %.3g (%s)\n", "parameter gradient norms",
           worst_norm, wn);
    printf("    %-40s max |a-b|/(1e-3+max|ref|)  = %.3g (%s)\n", "parameter gradients (sampled)",
           worst_sample, ws);
    check_buffers(r.m, &ref, 1);
    free_run(&r);
    rn_safetensors_free(&ref);
}

/* An optional argument runs only the tests whose names match it (cmocka pattern). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet20),
        cmocka_unit_test(test_resnet18),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
