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
 * Inference (forward passes in eval or inference mode only): no gradients, and activations
 * share slots once nothing reads them any more (plan_inference), so a deep net needs a few
 * slabs instead of one per value.
 *
 * Fusions: a BN or add whose output only an in-place ReLU reads runs with that ReLU as one op
 * when the backend has the fused kernel. The ReLU's output gradient is then read by the BN's
 * (or add's) backward, one node earlier, and the gradient between the two never exists.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>

void rn_graph_analyze(rn_model *m) {
    const int nv = m->n_values, nn = m->n_nodes;
    for (int v = 0; v < nv; v++) {
        m->values[v].producer = -1;
        m->values[v].block = -1;
        m->values[v].grad_first = nn;
        m->values[v].readers = 0;
    }
    for (int i = 0; i < nn; i++) {
        const rn_node *nd = &m->nodes[i];
        m->values[nd->out].producer = i;
        m->values[nd->in].readers++;
        m->values[nd->in].grad_first = i; /* the last reader so far */
        if (nd->in2 >= 0) {
            m->values[nd->in2].readers++;
            m->values[nd->in2].grad_first = i;
        }
    }
    for (int b = 0; b < m->n_blocks; b++) m->values[m->blocks[b].input].block = b;
    /* Convolutions whose output only the BN right after them reads. */
    for (int i = 0; i < nn; i++) {
        rn_node *nd = &m->nodes[i];
        nd->bn_next = nd->kind == RN_NODE_CONV && i + 1 < nn &&
                      m->nodes[i + 1].kind == RN_NODE_BN && m->nodes[i + 1].in == nd->out &&
                      m->values[nd->out].readers == 1;
    }
    /* grads_from: where the parameters of the nodes before each node end in the block. */
    size_t end = 0;
    for (int i = 0; i < nn; i++) {
        rn_node *nd = &m->nodes[i];
        nd->grads_from = end;
        const int ts[2] = {nd->weight, nd->bias};
        for (int k = 0; k < 2; k++)
            if (ts[k] >= 0 && m->tensors[ts[k]].info.kind == RN_TENSOR_PARAM)
                end = RN_MAX(end, m->tensors[ts[k]].off + m->tensors[ts[k]].info.numel);
    }
}

void rn_plan_free(rn_plan *p) {
    free(p->off);
    free(p->goff);
    free(p->relu_fused);
    memset(p, 0, sizeof *p);
}

/* Inference: the activations of the values that share a store (store[v] == v: the store's
 * owner) are alive from the node before their first producer (a convolution with its BN folded
 * writes the BN's output) to their last reader (the output: forever). Stores whose lifetimes
 * do not overlap share a slot; a node's input and output never do, since the node reads one
 * while it writes the other. Slots are taken first fit in the order stores come alive: the
 * smallest free slot that holds the store, else the largest free one, grown. */
static rn_status plan_inference(rn_plan *p, const rn_model *m, int max_batch, const int *store) {
    const int nv = m->n_values, nn = m->n_nodes;
    int *first = malloc((size_t)nv * sizeof(int)), *last = malloc((size_t)nv * sizeof(int));
    int *slot_of = malloc((size_t)nv * sizeof(int)), *slot_end = malloc((size_t)nv * sizeof(int));
    size_t *slot_size = malloc((size_t)nv * sizeof(size_t));
    size_t *slot_off = malloc((size_t)nv * sizeof(size_t));
    rn_status s = RN_OK;
    if (!first || !last || !slot_of || !slot_end || !slot_size || !slot_off) {
        s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the memory plan", m->name);
        goto done;
    }
    for (int v = 0; v < nv; v++) first[v] = nn, last[v] = -1, slot_of[v] = -1;
    for (int v = 1; v < nv; v++) {
        const int o = store[v], pr = m->values[v].producer;
        const int end = v == m->nodes[nn - 1].out ? nn : m->values[v].grad_first;
        first[o] = RN_MIN(first[o], pr > 0 ? pr - 1 : 0);
        last[o] = RN_MAX(last[o], RN_MAX(end, pr));
    }
    int n_slots = 0;
    for (int t = 0; t < nn; t++) /* stores in the order they come alive */
        for (int o = 1; o < nv; o++) {
            if (store[o] != o || first[o] != t) continue;
            const size_t need = rn_value_floats(&m->values[o]) * (size_t)max_batch;
            int best = -1;
            for (int q = 0; q < n_slots; q++) {
                if (slot_end[q] >= t) continue; /* still read at or after t */
                if (best < 0) { best = q; continue; }
                const bool fits = slot_size[q] >= need, best_fits = slot_size[best] >= need;
                if ((fits && (!best_fits || slot_size[q] < slot_size[best])) ||
                    (!fits && !best_fits && slot_size[q] > slot_size[best]))
                    best = q;
            }
            if (best < 0) best = n_slots++, slot_size[best] = 0;
            slot_size[best] = RN_MAX(slot_size[best], need);
            slot_end[best] = last[o];
            slot_of[o] = best;
        }
    size_t off = 0;
    for (int q = 0; q < n_slots; q++) slot_off[q] = off, off += slot_size[q];
    for (int v = 1; v < nv; v++) p->off[v] = slot_off[slot_of[store[v]]];
    p->act_floats = off;
    p->grad_floats = 0;
    p->inference = true;
done:
    free(first);
    free(last);
    free(slot_of);
    free(slot_end);
    free(slot_size);
    free(slot_off);
    if (s != RN_OK) rn_plan_free(p);
    return s;
}

rn_status rn_plan_memory(rn_plan *p, const rn_model *m, int max_batch,
                         const rn_backend *fusions, bool inference) {
    memset(p, 0, sizeof *p);
    const int nv = m->n_values, nn = m->n_nodes;
    p->off = calloc((size_t)nv, sizeof *p->off);
    p->goff = calloc((size_t)nv, sizeof *p->goff);
    p->relu_fused = calloc((size_t)nn, sizeof *p->relu_fused);
    int *store = malloc((size_t)nv * sizeof(int)); /* the value whose slab v uses */
    bool *skip_grad = calloc((size_t)nv, sizeof(bool)); /* gradients that never exist */
    int *slot_free_after = malloc((size_t)nv * sizeof(int)); /* per slot: last owner's producer */
    int *order = malloc((size_t)nv * sizeof(int));
    rn_status s = RN_OK;
    if (!p->off || !p->goff || !p->relu_fused || !store || !skip_grad || !slot_free_after ||
        !order) {
        s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the memory plan", m->name);
        rn_plan_free(p);
        goto done;
    }
    p->max_batch = max_batch;
    for (int v = 0; v < nv; v++) store[v] = v;

    /* In-place ReLU and add. */
    for (int i = 0; i < nn; i++) {
        const rn_node *nd = &m->nodes[i];
        int in = nd->in;
        if (in == 0 || m->values[in].readers != 1) continue;
        rn_node_kind pk = m->nodes[m->values[in].producer].kind;
        bool from_bn_or_add = pk == RN_NODE_BN || pk == RN_NODE_ADD;
        if ((nd->kind == RN_NODE_RELU && from_bn_or_add) ||
            (nd->kind == RN_NODE_ADD && pk == RN_NODE_BN))
            store[nd->out] = store[in];
    }

    /* Fused pairs: node i (BN or add) and node i+1, the in-place ReLU of its output. */
    for (int i = 0; i + 1 < nn && fusions; i++) {
        const rn_node *nd = &m->nodes[i];
        const rn_node *r = &m->nodes[i + 1];
        bool has = (nd->kind == RN_NODE_BN && fusions->batchnorm_relu_forward_train &&
                    fusions->batchnorm_relu_forward_eval && fusions->batchnorm_relu_backward) ||
                   (nd->kind == RN_NODE_ADD && fusions->add_relu_forward &&
                    fusions->add_relu_backward);
        if (has && r->kind == RN_NODE_RELU && r->in == nd->out &&
            m->values[nd->out].readers == 1 && store[r->out] == store[nd->out] &&
            m->values[nd->out].block < 0) {
            p->relu_fused[i] = true;
            skip_grad[nd->out] = true;
        }
    }

    if (inference) {
        s = plan_inference(p, m, max_batch, store);
        goto done;
    }
    size_t off = 0;
    for (int v = 1; v < nv; v++) {
        if (store[v] != v) {
            p->off[v] = p->off[store[v]];
            continue;
        }
        p->off[v] = off;
        off += rn_value_floats(&m->values[v]) * (size_t)max_batch;
    }
    p->act_floats = off;

    /* Gradient slots: greedy over the backward order. A slot is free again after the node
     * that last reads it (the value's producer) has run. */
    size_t slab = 0;
    for (int v = 1; v < nv; v++) slab = RN_MAX(slab, rn_value_floats(&m->values[v]));
    slab *= (size_t)max_batch;
    int n_slots = 0;
    /* Assign in the order gradients come alive: the output first, then by decreasing
     * grad_first (the backward pass runs from node nn-1 down). */
    int k = 0;
    for (int i = nn; i >= 0; i--)
        for (int v = 1; v < nv; v++)
            if (m->values[v].grad_first == i && !skip_grad[v]) order[k++] = v;
    for (int j = 0; j < k; j++) {
        int v = order[j];
        int born = m->values[v].grad_first; /* alive from the backward of this node ... */
        int slot = -1;
        for (int q = 0; q < n_slots && slot < 0; q++)
            if (slot_free_after[q] > born) slot = q; /* ... its previous owner died later */
        if (slot < 0) slot = n_slots++;
        /* ... until the backward of its producer, which reads it last (for a fused ReLU's
         * output, the node before it). */
        int pr = m->values[v].producer;
        slot_free_after[slot] = pr > 0 && p->relu_fused[pr - 1] ? pr - 1 : pr;
        p->goff[v] = (size_t)slot * slab;
    }
    p->grad_floats = (size_t)n_slots * slab;
done:
    free(order);
    free(slot_free_after);
    free(skip_grad);
    free(store);
    return s;
}
