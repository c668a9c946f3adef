/* batpipe — prompt templates: the BAT paper's instruction prompt and the
 * chat templates of the models batpipe runs.
 *
 * Chat templates are Jinja text in the model (GGUF tokenizer.chat_template,
 * tokenizer_config.json chat_template). batpipe has no Jinja interpreter:
 * it recognises template families by their markers and renders them
 * natively. Recognised:
 *   - "chatml": <|im_start|>ROLE\nCONTENT<|im_end|>\n per message,
 *     "<|im_start|>assistant\n" as the generation prompt (SmolLM2-Instruct,
 *     Qwen, ...). A default system message that the template inserts when
 *     the conversation has none (SmolLM2: "You are a helpful AI assistant
 *     named SmolLM, trained by Hugging Face") is taken from the template.
 *   - "llama2": [INST] ... [/INST] with <<SYS>> blocks (LLaMA-2-Chat), BOS
 *     and EOS written as the template's bos_token / eos_token.
 * Anything else is BP_ERR_UNSUPPORTED (use no chat template instead).
 * Strings returned through `char **out` are malloc'd: release with free(). */
#ifndef BATPIPE_PROMPT_H
#define BATPIPE_PROMPT_H

#include <stdint.h>

#include "error.h"

BP_EXTERN_C_BEGIN

/* The paper's Appendix G prompt; "{instruction}" is replaced. */
#define BP_PROMPT_BAT_TEMPLATE                                                                                     \
    "Based on the audio you've heard, refer to the instruction and provide a response.\n\n### Instruction:\n"    \
    "{instruction}\n\n### Response:"

typedef enum bp_chat_format {
    BP_CHAT_UNKNOWN = 0,
    BP_CHAT_CHATML = 1,
    BP_CHAT_LLAMA2 = 2
} bp_chat_format;

typedef struct bp_chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} bp_chat_message;

/* The BAT prompt for one instruction. */
BP_API bp_status bp_prompt_bat(const char *instruction, char **out, bp_error *err);

/* The family of a Jinja chat template (NULL gives BP_CHAT_UNKNOWN). */
BP_API bp_chat_format bp_chat_format_detect(const char *jinja);
/* "chatml", "llama2", "unknown". */
BP_API const char *bp_chat_format_name(int32_t format);

/* Render a conversation with the model's template. add_generation_prompt:
 * end with the opening of an assistant turn. bos/eos: the texts of the
 * model's BOS and EOS tokens (llama2 writes them; may be NULL otherwise).
 * An unrecognised template is BP_ERR_UNSUPPORTED naming the supported
 * families. */
BP_API bp_status bp_chat_render(const char *jinja, const bp_chat_message *msgs, int32_t n_msgs,
                                int32_t add_generation_prompt, const char *bos, const char *eos, char **out,
                                bp_error *err);

BP_EXTERN_C_END

#endif /* BATPIPE_PROMPT_H */
