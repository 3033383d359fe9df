/* fuzz_core.c - the libFuzzer entry point. Everything it checks is in
 * fuzz_check.c, which the replay driver runs too; see fuzz_check.h for the
 * input format. Built only with clang, by `make fuzz` (RELAY_FUZZ=ON). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_check(data, size);
}
