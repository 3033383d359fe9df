/* metric.c - the name tables behind metric.h. */
#include "metric.h"

const char meter_symbol[METER_TYPE_COUNT] = {
#define X(id, sym, desc) [METER_##id] = sym,
	METER_TYPES(X)
#undef X
};

const uint8_t meter_by_symbol_[256] = {
#define X(id, sym, desc) [(uint8_t)sym] = METER_##id + 1,
	METER_TYPES(X)
#undef X
};

const char *const reject_reason_name[REJECT_REASON_COUNT] = {
	[REJECT_NONE] = "none",
#define X(id, name, desc) [REJECT_##id] = name,
	REJECT_REASONS(X)
#undef X
};

const char *const reject_reason_desc[REJECT_REASON_COUNT] = {
	[REJECT_NONE] = "accepted",
#define X(id, name, desc) [REJECT_##id] = desc,
	REJECT_REASONS(X)
#undef X
};
