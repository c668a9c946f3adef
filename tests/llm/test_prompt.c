/* Prompt templates: the BAT prompt and the chat template families. */
#include <stdlib.h>
#include <string.h>

#include "batpipe/prompt.h"
#include "bp_test.h"

/* SmolLM2-135M-Instruct's template, as stored in its GGUF. */
static const char smollm_tmpl[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' "
    "+ message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

static const char llama2_tmpl[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
    "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
    "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + "
    "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}";

int main(void) {
    bp_error err = BP_ERROR_INIT;
    char *s = NULL;
    CHECK_OK(bp_prompt_bat("Where is the dog barking?", &s, &err), &err);
    CHECK(s && strcmp(s, "Based on the audio you've heard, refer to the instruction and provide a response.\n\n"
                         "### Instruction:\nWhere is the dog barking?\n\n### Response:") == 0);
    free(s);

    CHECK(bp_chat_format_detect(smollm_tmpl) == BP_CHAT_CHATML);
    CHECK(bp_chat_format_detect(llama2_tmpl) == BP_CHAT_LLAMA2);
    CHECK(bp_chat_format_detect("{{ messages }}") == BP_CHAT_UNKNOWN);
    CHECK(bp_chat_format_detect(NULL) == BP_CHAT_UNKNOWN);

    bp_chat_message user = {"user", "What is 2+2?"};
    CHECK_OK(bp_chat_render(smollm_tmpl, &user, 1, 1, NULL, NULL, &s, &err), &err);
    CHECK(s && strcmp(s, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                         "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n") == 0);
    free(s);
    bp_chat_message two[3] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}};
    CHECK_OK(bp_chat_render(smollm_tmpl, two, 3, 0, NULL, NULL, &s, &err), &err);
    CHECK(s && strcmp(s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                         "<|im_start|>assistant\nHello.<|im_end|>\n") == 0);
    free(s);
    /* a ChatML template without a literal default system message */
    CHECK_OK(bp_chat_render("{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'}}", &user,
                            1, 1, NULL, NULL, &s, &err), &err);
    CHECK(s && strcmp(s, "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n") == 0);
    free(s);

    CHECK_OK(bp_chat_render(llama2_tmpl, two, 3, 1, "<s>", "</s>", &s, &err), &err);
    CHECK(s && strcmp(s, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s>") == 0);
    free(s);

    s = NULL;
    CHECK(bp_chat_render("{% for m in messages %}{{ m.content }}{% endfor %}", &user, 1, 1, NULL, NULL, &s, &err) ==
          BP_ERR_UNSUPPORTED);
    CHECK(s == NULL && strstr(err.msg, "supported: chatml, llama2"));
    CHECK(bp_chat_render(NULL, &user, 1, 1, NULL, NULL, &s, &err) == BP_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "no chat template") != NULL);
    return TEST_RESULT();
}
