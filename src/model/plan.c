/*
 * plan.c — the memory plan of a model's workspace.
 *
 * Activations: each value gets a slab of max_batch images, except that a ReLU or a residual
 * add writes over its input when that input comes from a BN (or an add) and nothing else reads
 * it. The backward passes never need what was overwritten: BN's backward reads BN's input, the
 * add's backward reads nothing, ReLU's backward reads ReLU's output. This drops three of the
 * seven activations of a BasicBlock.
 *
 * Gradients: the gradient of a value is alive during the backward pass from its last consumer
 * (which writes it first) to its producer (which reads it last). Values whose lifetimes do not
 * overlap share a slot, so a ResNet of any depth needs only a handful of gradient slabs.
 *
 * Fusions: a BN or add whose output only an in-place ReLU reads runs with that ReLU as one op
 * when the backend has the fused kernel. The ReLU's output gradient is then read by the BN's
 * (or add's) backward, one node earlier, and the gradient between the two never exists.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static size_t value_floats(const rn_value *v) { return (size_t)v->c * v->h * v->w; }

void rn_plan_memory(rn_model *m, int max_batch, const rn_backend *fusions) {
    const int nv = m->n_values, nn = m->n_nodes;
    int *readers = calloc((size_t)nv, sizeof(int));
    int *store = malloc((size_t)nv * sizeof(int)); /* the value whose slab v uses */
    int *last_use = malloc((size_t)nv * sizeof(int));
    for (int v = 0; v < nv; v++) {
        store[v] = v;
        last_use[v] = -1;
        m->values[v].producer = -1;
        m->values[v].block = -1;
    }
    for (int i = 0; i < nn; i++) {
        const rn_node *nd = &m->nodes[i];
        m->values[nd->out].producer = i;
        readers[nd->in]++;
        last_use[nd->in] = i;
        if (nd->in2 >= 0) {
            readers[nd->in2]++;
            last_use[nd->in2] = i;
        }
    }
    for (int b = 0; b < m->n_blocks; b++) m->values[m->blocks[b].input].block = b;

    /* In-place ReLU and add. */
    for (int i = 0; i < nn; i++) {
        const rn_node *nd = &m->nodes[i];
        int in = nd->in;
        if (in == 0 || readers[in] != 1) continue;
        rn_node_kind pk = m->nodes[m->values[in].producer].kind;
        bool from_bn_or_add = pk == RN_NODE_BN || pk == RN_NODE_ADD;
        if ((nd->kind == RN_NODE_RELU && from_bn_or_add) ||
            (nd->kind == RN_NODE_ADD && pk == RN_NODE_BN))
            store[nd->out] = store[in];
    }
    /* Convolutions whose output only the BN right after them reads. */
    for (int i = 0; i < nn; i++) {
        rn_node *nd = &m->nodes[i];
        nd->bn_next = nd->kind == RN_NODE_CONV && i + 1 < nn &&
                      m->nodes[i + 1].kind == RN_NODE_BN && m->nodes[i + 1].in == nd->out &&
                      readers[nd->out] == 1;
    }

    /* Fused pairs: node i (BN or add) and node i+1, the in-place ReLU of its output. */
    bool *skip_grad = calloc((size_t)nv, sizeof(bool)); /* gradients that never exist */
    for (int i = 0; i < nn; i++) {
        rn_node *nd = &m->nodes[i];
        nd->relu_fused = false;
        if (i + 1 >= nn || !fusions) continue;
        const rn_node *r = &m->nodes[i + 1];
        bool has = (nd->kind == RN_NODE_BN && fusions->batchnorm_relu_forward_train &&
                    fusions->batchnorm_relu_forward_eval && fusions->batchnorm_relu_backward) ||
                   (nd->kind == RN_NODE_ADD && fusions->add_relu_forward &&
                    fusions->add_relu_backward);
        if (has && r->kind == RN_NODE_RELU && r->in == nd->out && readers[nd->out] == 1 &&
            store[r->out] == store[nd->out] && m->values[nd->out].block < 0) {
            nd->relu_fused = true;
            skip_grad[nd->out] = true;
        }
    }

    size_t off = 0;
    for (int v = 1; v < nv; v++) {
        if (store[v] != v) {
            m->values[v].off = m->values[store[v]].off;
            continue;
        }
        m->values[v].off = off;
        off += value_floats(&m->values[v]) * (size_t)max_batch;
    }
    m->act_floats = off;

    /* Gradient slots: greedy over the backward order. A slot is free again after the node
     * that last reads it (the value's producer) has run. */
    size_t slab = 0;
    for (int v = 1; v < nv; v++)
        if (value_floats(&m->values[v]) > slab) slab = value_floats(&m->values[v]);
    slab *= (size_t)max_batch;
    int *slot_free_after = malloc((size_t)nv * sizeof(int)); /* the last owner's producer */
    int n_slots = 0;
    /* Walk the nodes backwards; node i's backward writes the gradients of its inputs and reads
     * that of its output. */
    for (int v = 0; v < nv; v++) m->values[v].grad_first = last_use[v] < 0 ? nn : last_use[v];
    /* Assign in the order gradients come alive: the output first, then by decreasing
     * grad_first (the backward pass runs from node nn-1 down). */
    int *order = malloc((size_t)nv * sizeof(int));
    int k = 0;
    for (int i = nn; i >= 0; i--)
        for (int v = 1; v < nv; v++)
            if (m->values[v].grad_first == i && !skip_grad[v]) order[k++] = v;
    for (int j = 0; j < k; j++) {
        int v = order[j];
        int born = m->values[v].grad_first; /* alive from the backward of this node ... */
        int slot = -1;
        for (int s = 0; s < n_slots && slot < 0; s++)
            if (slot_free_after[s] > born) slot = s; /* ... its previous owner died at a later node */
        if (slot < 0) slot = n_slots++;
        /* ... until the backward of its producer, which reads it last (for a fused ReLU's
         * output, the node before it). */
        int p = m->values[v].producer;
        slot_free_after[slot] = p > 0 && m->nodes[p - 1].relu_fused ? p - 1 : p;
        m->values[v].goff = (size_t)slot * slab;
    }
    m->grad_floats = (size_t)n_slots * slab;
    free(order);
    free(slot_free_after);
    free(skip_grad);
    free(readers);
    free(store);
    free(last_use);
}
