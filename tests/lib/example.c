/*
 * A program outside the build that uses libchaff the way README's library
 * section shows: tests/lib/test_link.sh compiles it against libchaff.a
 * alone, with the dependencies' own libraries.
 */
#include <stdio.h>
#include <string.h>
#include "chaff.h"
int main(void)
{
	const char raw[] = "Subject: Cheap pills\n\nBuy now at http://shop.example.com/\n";
	chaff_tokenizer *tok;
	if (chaff_tokenizer_new(NULL, &tok) != CHAFF_OK)
		return 1;
	struct chaff_tokens tk;
	chaff_tokenize(tok, raw, strlen(raw), &tk);
	for (size_t i = 0; i < tk.count; i++)
		printf("%016llx %s\n", (unsigned long long)tk.items[i].hash, tk.items[i].text);
	chaff_tokenizer_free(tok);
	return 0;
}
