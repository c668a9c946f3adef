/* batpipe — projectors (kind "batpipe.projector/1"): encoder tokens → LLM embeddings.
 *
 * A projector is a bp_stage (stage.h). Input: "tokens" [batch, n_tokens, dim]
 * from an encoder. Main output: "prefix_embeds" [batch, n_prefix, llm_dim],
 * the embeddings placed before the text tokens of the LLM (llm.h). Its
 * input_spec fixes `dim`; its output's last dim must equal the LLM's
 * embedding width, which the host checks against bp_llm_info at load time. */
#ifndef BATPIPE_PROJECTOR_H
#define BATPIPE_PROJECTOR_H

#include "stage.h"

typedef bp_stage bp_projector;

#endif /* BATPIPE_PROJECTOR_H */
