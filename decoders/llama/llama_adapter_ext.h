/* batpipe llama plugin — the adapter extension of a bp_llm.
 *
 *   const bp_llm_adapter_ext *ext = llm->get_extension(llm, BP_LLM_ADAPTER_EXT_ID);
 *
 * gives access to the instance's adapter (LLaMA-Adapter v2 or LoRA, chosen
 * by the plugin parameters adapter / adapter_type): its type, its
 * parameters as named F32 tensors, and safetensors save/load. The training
 * issue extends this with gradients under a new id ("batpipe.llm.adapter/2");
 * this struct does not change.
 *
 * Header-only ABI (plain structs and function pointers): a host includes
 * this file; nothing needs linking. Ownership and threads as bp_llm: one
 * thread at a time, every pointer borrowed from the llm. */
#ifndef BP_LLAMA_ADAPTER_EXT_H
#define BP_LLAMA_ADAPTER_EXT_H

#include <stdint.h>

#include "batpipe/error.h"
#include "batpipe/llm.h"
#include "batpipe/tensor.h"

BP_EXTERN_C_BEGIN

#define BP_LLM_ADAPTER_EXT_ID "batpipe.llm.adapter/1"

typedef struct bp_llm_adapter_ext {
    uint32_t struct_size; /* sizeof(bp_llm_adapter_ext) */

    /* "none", "llama_adapter_v2" or "lora". The string is static. */
    const char *(*type)(bp_llm *llm);

    /* Number of adapter tensors (0 with no adapter). */
    int32_t (*tensor_count)(bp_llm *llm);
    /* A writable host F32 view of tensor i (owns_data = 0, `name` set to its
     * file name, e.g. "adapter.29.gate", "model.layers.3.self_attn.q_proj.
     * lora_B.weight"). Data stays owned by the llm and valid until destroy or
     * `load`. Rows are in the model's internal order: on a GGUF model the
     * rows of q/k-output tensors are in Meta's interleaved order (the files
     * use the Hugging Face order; save/load convert). After writing values,
     * start a new sequence (eval with pos = 0): cached keys/values are stale. */
    bp_status (*tensor_at)(bp_llm *llm, int32_t i, bp_tensor *view, bp_error *err);

    /* Write the adapter to a safetensors file (atomically; Hugging Face row
     * order and names; metadata adapter_type, lora_alpha, ...). */
    bp_status (*save)(bp_llm *llm, const char *path, bp_error *err);
    /* Replace the adapter with the one in `path` (its type: the file's
     * metadata, else the instance's adapter_type). Clears the KV cache;
     * invalidates views from tensor_at. On failure the old adapter stays. */
    bp_status (*load)(bp_llm *llm, const char *path, bp_error *err);
} bp_llm_adapter_ext;

BP_EXTERN_C_END

#endif /* BP_LLAMA_ADAPTER_EXT_H */
