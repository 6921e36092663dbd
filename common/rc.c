#include "chaff.h"

const char *chaff_strerror(int rc)
{
	switch (rc) {
	case CHAFF_OK: return "success";
	case CHAFF_ENOMEM: return "out of memory";
	case CHAFF_EINVAL: return "invalid argument";
	case CHAFF_EIO: return "input/output error";
	case CHAFF_ECHARSET: return "charset converter unavailable";
	case CHAFF_EPATTERN: return "built-in pattern failed to compile";
	case CHAFF_EFORMAT: return "input is not in the expected format";
	}
	return "unknown error";
}
