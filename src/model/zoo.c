/*
 * zoo.c — the named models, each laid out exactly like the PyTorch code whose state_dict names
 * it shares:
 *  - resnet8..1202, plain8..110: He et al.'s CIFAR nets as in akamaster/pytorch_resnet_cifar10
 *    (3x3 stem of 16, stages 16/32/64 of n BasicBlocks, option-A shortcuts; plain = no shortcut);
 *  - resnet18..152: the CIFAR layout of kuangliu/pytorch-cifar (3x3 stem of 64, stages
 *    64/128/256/512, option-B shortcuts named `shortcut`, classifier `linear`);
 *  - resnet18-imagenet..resnet152-imagenet: torchvision's layout (7x7/2 stem, max pool,
 *    `downsample`, classifier `fc`).
 */
#include "model.h"

#include <string.h>

typedef struct {
    const char *name;
    rn_family family;
    int depth;       /* CIFAR-A: 6n+2 */
    bool plain;      /* no shortcuts */
    bool bottleneck; /* option-B / ImageNet families */
    int blocks[4];
} zoo_entry;

static const zoo_entry zoo[] = {
    {"resnet8", RN_FAMILY_CIFAR_A, 8, false, false, {0}},   /* n = 1: small, for quick trials */
    {"resnet14", RN_FAMILY_CIFAR_A, 14, false, false, {0}},
    {"resnet20", RN_FAMILY_CIFAR_A, 20, false, false, {0}},
    {"resnet32", RN_FAMILY_CIFAR_A, 32, false, false, {0}},
    {"resnet44", RN_FAMILY_CIFAR_A, 44, false, false, {0}},
    {"resnet56", RN_FAMILY_CIFAR_A, 56, false, false, {0}},
    {"resnet110", RN_FAMILY_CIFAR_A, 110, false, false, {0}},
    {"resnet1202", RN_FAMILY_CIFAR_A, 1202, false, false, {0}},
    {"plain8", RN_FAMILY_CIFAR_A, 8, true, false, {0}},
    {"plain14", RN_FAMILY_CIFAR_A, 14, true, false, {0}},
    {"plain20", RN_FAMILY_CIFAR_A, 20, true, false, {0}},
    {"plain32", RN_FAMILY_CIFAR_A, 32, true, false, {0}},
    {"plain44", RN_FAMILY_CIFAR_A, 44, true, false, {0}},
    {"plain56", RN_FAMILY_CIFAR_A, 56, true, false, {0}},
    {"plain110", RN_FAMILY_CIFAR_A, 110, true, false, {0}},
    {"resnet18", RN_FAMILY_CIFAR_B, 18, false, false, {2, 2, 2, 2}},
    {"resnet34", RN_FAMILY_CIFAR_B, 34, false, false, {3, 4, 6, 3}},
    {"resnet50", RN_FAMILY_CIFAR_B, 50, false, true, {3, 4, 6, 3}},
    {"resnet101", RN_FAMILY_CIFAR_B, 101, false, true, {3, 4, 23, 3}},
    {"resnet152", RN_FAMILY_CIFAR_B, 152, false, true, {3, 8, 36, 3}},
    {"resnet18-imagenet", RN_FAMILY_IMAGENET, 18, false, false, {2, 2, 2, 2}},
    {"resnet34-imagenet", RN_FAMILY_IMAGENET, 34, false, false, {3, 4, 6, 3}},
    {"resnet50-imagenet", RN_FAMILY_IMAGENET, 50, false, true, {3, 4, 6, 3}},
    {"resnet101-imagenet", RN_FAMILY_IMAGENET, 101, false, true, {3, 4, 23, 3}},
    {"resnet152-imagenet", RN_FAMILY_IMAGENET, 152, false, true, {3, 8, 36, 3}},
};
#define ZOO_SIZE ((int)(sizeof zoo / sizeof zoo[0]))

const char *const *rn_model_names(void) {
    static const char *names[ZOO_SIZE + 1];
    if (!names[0])
        for (int i = 0; i < ZOO_SIZE; i++) names[i] = zoo[i].name;
    return names;
}

/* conv + BN, the pair every block is made of; returns the BN's output value. */
static int conv_bn(rn_model *m, const char *prefix, const char *conv, const char *bn, int in,
                   int K, int R, int stride) {
    char cname[64], bname[64];
    snprintf(cname, sizeof cname, "%s.%s", prefix, conv);
    snprintf(bname, sizeof bname, "%s.%s", prefix, bn);
    int x = rn_graph_conv(m, cname, in, K, R, stride, R / 2, false);
    return rn_graph_bn(m, bname, x);
}

/* BasicBlock: conv3x3(stride)-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU.
 * Shortcut when the shape changes: option A (CIFAR-A) or 1x1 conv + BN named
 * `shortcut.0/1` (CIFAR-B) or `downsample.0/1` (ImageNet). */
int rn_graph_basic_block(rn_model *m, const char *prefix, int in, int planes, int stride,
                         bool plain) {
    if (!rn_graph_mark_block(m, prefix, in)) return -1;
    int in_planes = m->values[in].c;
    int x = conv_bn(m, prefix, "conv1", "bn1", in, planes, 3, stride);
    x = rn_graph_relu(m, x);
    x = conv_bn(m, prefix, "conv2", "bn2", x, planes, 3, 1);
    if (!plain) {
        int sc = in;
        if (stride != 1 || in_planes != planes) {
            if (m->family == RN_FAMILY_CIFAR_A) {
                sc = rn_graph_shortcut_a(m, in, planes, stride);
            } else {
                const char *s = m->family == RN_FAMILY_CIFAR_B ? "shortcut" : "downsample";
                char c0[16], b1[16];
                snprintf(c0, sizeof c0, "%s.0", s);
                snprintf(b1, sizeof b1, "%s.1", s);
                sc = conv_bn(m, prefix, c0, b1, in, planes, 1, stride);
            }
        }
        x = rn_graph_add(m, x, sc);
    }
    return rn_graph_relu(m, x);
}

/* Bottleneck (expansion 4): 1x1-BN-ReLU, 3x3(stride)-BN-ReLU, 1x1-BN, shortcut, ReLU. The stride
 * sits on the 3x3 conv, as in torchvision (v1.5) and kuangliu's code. */
int rn_graph_bottleneck(rn_model *m, const char *prefix, int in, int planes, int stride,
                        bool plain) {
    if (!rn_graph_mark_block(m, prefix, in)) return -1;
    int in_planes = m->values[in].c;
    int x = rn_graph_relu(m, conv_bn(m, prefix, "conv1", "bn1", in, planes, 1, 1));
    x = rn_graph_relu(m, conv_bn(m, prefix, "conv2", "bn2", x, planes, 3, stride));
    x = conv_bn(m, prefix, "conv3", "bn3", x, 4 * planes, 1, 1);
    if (!plain) {
        int sc = in;
        if (stride != 1 || in_planes != 4 * planes) {
            const char *s = m->family == RN_FAMILY_CIFAR_B ? "shortcut" : "downsample";
            char c0[16], b1[16];
            snprintf(c0, sizeof c0, "%s.0", s);
            snprintf(b1, sizeof b1, "%s.1", s);
            sc = conv_bn(m, prefix, c0, b1, in, 4 * planes, 1, stride);
        }
        x = rn_graph_add(m, x, sc);
    }
    return rn_graph_relu(m, x);
}

static int build_cifar_a(rn_model *m, const zoo_entry *e) {
    int n = (e->depth - 2) / 6;
    int x = rn_graph_conv(m, "conv1", 0, 16, 3, 1, 1, false);
    x = rn_graph_relu(m, rn_graph_bn(m, "bn1", x));
    static const int widths[3] = {16, 32, 64};
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < n; b++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "layer%d.%d", s + 1, b);
            x = rn_graph_basic_block(m, prefix, x, widths[s], (s > 0 && b == 0) ? 2 : 1, e->plain);
        }
    x = rn_graph_avgpool(m, x);
    return rn_graph_linear(m, "linear", x, m->opts.num_classes);
}

static int build_stages(rn_model *m, const zoo_entry *e, int x) {
    static const int widths[4] = {64, 128, 256, 512};
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < e->blocks[s]; b++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "layer%d.%d", s + 1, b);
            int stride = (s > 0 && b == 0) ? 2 : 1;
            x = e->bottleneck ? rn_graph_bottleneck(m, prefix, x, widths[s], stride, e->plain)
                              : rn_graph_basic_block(m, prefix, x, widths[s], stride, e->plain);
        }
    return rn_graph_avgpool(m, x);
}

static int build_cifar_b(rn_model *m, const zoo_entry *e) {
    int x = rn_graph_conv(m, "conv1", 0, 64, 3, 1, 1, false);
    x = rn_graph_relu(m, rn_graph_bn(m, "bn1", x));
    x = build_stages(m, e, x);
    return rn_graph_linear(m, "linear", x, m->opts.num_classes);
}

static int build_imagenet(rn_model *m, const zoo_entry *e) {
    int x = rn_graph_conv(m, "conv1", 0, 64, 7, 2, 3, false);
    x = rn_graph_relu(m, rn_graph_bn(m, "bn1", x));
    x = rn_graph_maxpool(m, x, 3, 2, 1);
    x = build_stages(m, e, x);
    return rn_graph_linear(m, "fc", x, m->opts.num_classes);
}

rn_status rn_zoo_build(rn_model **out, const char *name, const rn_model_opts *opts) {
    *out = NULL;
    const zoo_entry *e = NULL;
    for (int i = 0; i < ZOO_SIZE; i++)
        if (!strcmp(zoo[i].name, name)) e = &zoo[i];
    if (!e)
        return rn_fail(RN_ERR_UNKNOWN_MODEL,
                       "unknown model '%s' (expected resnet8|14|20|32|44|56|110|1202, plain8|14|20|"
                       "32|44|56|110, resnet18|34|50|101|152, or resnet18..152-imagenet)",
                       name);
    bool imagenet = e->family == RN_FAMILY_IMAGENET;
    rn_model_opts o = opts ? *opts : (rn_model_opts){0};
    if (!o.in_channels) o.in_channels = 3;
    if (!o.in_height) o.in_height = imagenet ? 224 : 32;
    if (!o.in_width) o.in_width = imagenet ? 224 : 32;
    if (!o.num_classes) o.num_classes = imagenet ? 1000 : 10;
    if (o.in_channels < 1 || o.in_channels > 4)
        return rn_fail(RN_ERR_BAD_ARG, "%s: %d input channels (expected 1 to 4)", name,
                       o.in_channels);
    if (o.num_classes < 1 || o.num_classes > 100000)
        return rn_fail(RN_ERR_BAD_ARG, "%s: %d classes (expected 1 to 100000)", name,
                       o.num_classes);
    /* Every stage must keep at least one pixel: CIFAR nets halve the size 2 or 3 times,
     * ImageNet nets 5 times. */
    int min_size = imagenet ? 32 : (e->family == RN_FAMILY_CIFAR_B ? 8 : 4);
    if (o.in_height < min_size || o.in_width < min_size || o.in_height > 4096 ||
        o.in_width > 4096)
        return rn_fail(RN_ERR_BAD_ARG, "%s: input size %dx%d (expected %d to 4096 pixels a side)",
                       name, o.in_height, o.in_width, min_size);
    rn_model *m = rn_graph_new(name, &o, e->family);
    if (!m) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the model", name);
    int last = e->family == RN_FAMILY_CIFAR_A   ? build_cifar_a(m, e)
               : e->family == RN_FAMILY_CIFAR_B ? build_cifar_b(m, e)
                                                : build_imagenet(m, e);
    if (last < 0) {
        rn_model_free(m);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the model's graph", name);
    }
    *out = m;
    return RN_OK;
}

rn_status rn_model_create(rn_model **out, const char *name, const rn_model_opts *opts,
                          uint64_t seed) {
    *out = NULL;
    rn_model *m;
    rn_status s = rn_zoo_build(&m, name, opts);
    if (s != RN_OK) return s;
    if ((s = rn_graph_finish(m, seed)) != RN_OK) {
        rn_model_free(m);
        return s;
    }
    *out = m;
    return RN_OK;
}
