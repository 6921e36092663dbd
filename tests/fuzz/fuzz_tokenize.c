/* libFuzzer target: any bytes as a message. The tokenizer must neither
 * crash, leak, nor read out of bounds, whatever the input. */
#include <stddef.h>
#include <stdint.h>

#include "chaff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static chaff_tokenizer *tok;
	if (!tok) {
		struct chaff_tokenizer_config cfg;
		chaff_tokenizer_config_default(&cfg);
		cfg.flags |= CHAFF_TOK_PAIRS;
		if (chaff_tokenizer_new(&cfg, &tok) != CHAFF_OK)
			return 0;
	}
	struct chaff_tokens tk;
	if (chaff_tokenize(tok, data, size, &tk) == CHAFF_OK) {
		/* Touch every token so a dangling pointer shows up here. */
		volatile size_t sum = 0;
		for (size_t i = 0; i < tk.count; i++)
			sum += tk.items[i].len + (size_t)tk.items[i].text[0];
	}
	return 0;
}
