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
	case CHAFF_ENOTFOUND: return "not found";
	case CHAFF_EVERSION: return "made by an incompatible version";
	case CHAFF_EDB: return "database error";
	case CHAFF_ENOSPC: return "the disk is full";
	case CHAFF_EACCES: return "permission denied or read-only";
	case CHAFF_ECORRUPT: return "the database is damaged";
	case CHAFF_EEMPTY: return "the database needs both spam and ham trained first";
	case CHAFF_EBUSY: return "the database is in use";
	}
	return "unknown error";
}
