/* Pipeline metrics: the `metrics` list of a pipeline file (metric plugins
 * with their parameters), created at load time, and the load-time check
 * that every tensor a metric reads is produced by the input (e.g. a
 * dataset's labels) or by a stage. The runner (pipeline_run.c) feeds them
 * batch by batch; the results go into the report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_internal.h"

static bp_status metric_make(bp_pipeline *p, config_setting_t *sec, int idx, bp_error *err) {
    bp_metric_rec *r = &p->metrics[p->n_metrics];
    memset(r, 0, sizeof *r);
    bp_config_where(p->cfg, sec, r->where, sizeof r->where);
    char slot[32];
    snprintf(slot, sizeof slot, "metrics[%d]", idx);
    if (!config_setting_is_group(sec))
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s must be a group: metrics = ( { type = \"map\"; }, ... );",
                            r->where, slot);
    const char *type;
    bp_status st = bp_sec_string(p->cfg, sec, slot, "type", NULL, NULL, &type, err);
    if (st != BP_OK) return st;
    const bp_component_info *c = bp_registry_find(p->reg, BP_KIND_METRIC, type);
    if (!c) {
        char choices[512], where[600];
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: %s: unknown metric plugin '%s'; installed: %s",
                            bp_config_where(p->cfg, config_setting_get_member(sec, "type"), where, sizeof where), slot,
                            type, bp_registry_choices(p->reg, BP_KIND_METRIC, choices, sizeof choices));
    }
    r->comp = c;
    snprintf(r->label, sizeof r->label, "%s (%s)", slot, c->desc->name);
    static const char *const reserved[] = {"type", NULL};
    if ((st = bp_paramset_build(c->desc, r->label, p->cfg, sec, reserved, &r->params, err)) != BP_OK) return st;
    p->n_metrics++; /* owned from here on: freed by bp_metrics_free */
    void *inst = NULL;
    if ((st = bp_registry_create(p->reg, c, bp_paramset_params(r->params), NULL, &inst, err)) != BP_OK) {
        bp_error_prefix(err, "%s: %s: ", r->where, r->label);
        return st;
    }
    r->m = inst;
    if (r->m->struct_size < offsetof(bp_metric, destroy) + sizeof(void *) || !r->m->inputs || !r->m->reset ||
        !r->m->update || !r->m->compute || !r->m->destroy)
        return bp_error_set(err, BP_ERR_ABI, "%s (%s): instance table is incomplete", r->label, c->plugin->path);
    bp_error e2 = BP_ERROR_INIT;
    if ((st = r->m->inputs(r->m, &r->inputs, &r->n_inputs, &e2)) != BP_OK)
        return bp_error_set(err, st, "%s: %s: inputs: %s", r->where, r->label, e2.msg);
    if (r->n_inputs < 1 || r->n_inputs > 16 || !r->inputs)
        return bp_error_set(err, BP_ERR_ABI, "%s: declares %u inputs (1..16 allowed)", r->label, r->n_inputs);
    for (uint32_t i = 0; i < r->n_inputs; i++)
        if (!r->inputs[i] || !r->inputs[i][0] || strlen(r->inputs[i]) >= 48)
            return bp_error_set(err, BP_ERR_ABI, "%s: input %u has no usable name", r->label, i);
    return BP_OK;
}

bp_status bp_metrics_configure(bp_pipeline *p, config_setting_t *list, bp_error *err) {
    char where[600];
    int t = config_setting_type(list);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_GROUP)
        return bp_error_set(
            err, BP_ERR_INVALID,
            "%s: metrics must be a list of groups: metrics = ( { type = \"map\"; }, { type = \"doa\"; } );",
            bp_config_where(p->cfg, list, where, sizeof where));
    int n = t == CONFIG_TYPE_GROUP ? 1 : config_setting_length(list);
    if (n > 16)
        return bp_error_set(err, BP_ERR_INVALID, "%s: at most 16 metrics",
                            bp_config_where(p->cfg, list, where, sizeof where));
    p->metrics = calloc((size_t)(n ? n : 1), sizeof *p->metrics);
    if (!p->metrics) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        config_setting_t *sec = t == CONFIG_TYPE_GROUP ? list : config_setting_get_elem(list, (unsigned)i);
        bp_status st = metric_make(p, sec, i, err);
        if (st != BP_OK) return st;
    }
    return BP_OK;
}

int bp_metrics_uses(const bp_pipeline *p, const char *name) {
    for (size_t i = 0; i < p->n_metrics; i++)
        for (uint32_t k = 0; k < p->metrics[i].n_inputs; k++)
            if (strcmp(p->metrics[i].inputs[k], name) == 0) return 1;
    return 0;
}

bp_status bp_metrics_check_inputs(bp_pipeline *p, bp_error *err) {
    if (!p->n_metrics) return BP_OK;
    char in_names[64][48];
    uint32_t n_in = bp_input_names(p, in_names, 64);
    for (size_t i = 0; i < p->n_metrics; i++) {
        const bp_metric_rec *r = &p->metrics[i];
        for (uint32_t k = 0; k < r->n_inputs; k++) {
            const char *name = r->inputs[k];
            int found = 0;
            for (uint32_t j = 0; j < n_in && !found; j++) found = strcmp(in_names[j], name) == 0;
            for (int s = 0; s < p->n_stages && !found; s++)
                for (uint32_t j = 0; j < p->stages[s].n_ports && !found; j++)
                    found = strcmp(p->stages[s].ports[j].name, name) == 0;
            if (found) continue;
            bp_sbuf have = {0}, from_stages = {0};
            for (uint32_t j = 0; j < n_in; j++) bp_sbuf_printf(&have, "%s%s", j ? ", " : "", in_names[j]);
            for (int s = 0; s < p->n_stages; s++)
                for (uint32_t j = 0; j < p->stages[s].n_ports; j++)
                    bp_sbuf_printf(&from_stages, "%s%s", from_stages.len ? ", " : "", p->stages[s].ports[j].name);
            bp_error_set(err, BP_ERR_INVALID,
                         "%s: %s reads '%s', which neither the input nor a stage produces; the input offers: %s; the "
                         "stages produce: %s",
                         r->where, r->label, name, have.s ? have.s : "(nothing)",
                         from_stages.s ? from_stages.s : "(no stages)");
            bp_sbuf_free(&have);
            bp_sbuf_free(&from_stages);
            return BP_ERR_INVALID;
        }
    }
    return BP_OK;
}

void bp_metrics_free(bp_pipeline *p) {
    for (size_t i = 0; i < p->n_metrics; i++) {
        if (p->metrics[i].m && p->metrics[i].m->destroy) p->metrics[i].m->destroy(p->metrics[i].m);
        bp_paramset_free(p->metrics[i].params);
    }
    free(p->metrics);
    p->metrics = NULL;
    p->n_metrics = 0;
}
