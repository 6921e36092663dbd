/*
 * chaff dump / load: the database as text, gzip-compressed when the file
 * name ends in .gz. The dump carries everything scoring depends on (seed,
 * tokenizer, totals, parameters, records), so a dump loaded into an empty
 * database scores every message exactly as the original did.
 *
 *     # chaff dump 1
 *     seed 9f3c0a1b2c3d4e5f
 *     tokenizer 5
 *     tok_flags 0
 *     spam 1896
 *     ham 4150
 *     last_train 1732850000
 *     param robs 0.0178
 *     ...
 *     token 00a1b2c3d4e5f607 12 0 20420
 *     ...
 *     digest 5f0c...e1 spam
 *     ...
 *     # end 114580 tokens 4031 digests
 *
 * The end line makes a dump cut short (an interrupted "chaff dump > FILE")
 * fail to load instead of loading in part.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cli.h"

struct sink {
	gzFile gz;
	FILE *f;
	bool failed;
	uint64_t tokens, digests;
};

static void put(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct sink *s, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || s->failed)
		return;
	if (s->gz ? gzwrite(s->gz, buf, (unsigned)n) != n : fwrite(buf, 1, (size_t)n, s->f) != (size_t)n)
		s->failed = true;
}

static int dump_record(void *u, uint64_t hash, const struct chaff_record *r)
{
	struct sink *s = u;
	put(s, "token %016" PRIx64 " %" PRIu32 " %" PRIu32 " %" PRIu32 "\n", hash, r->spam, r->ham,
	    r->day);
	s->tokens++;
	return s->failed ? CHAFF_EIO : 0;
}

static int dump_digest(void *u, const struct chaff_digest *d, uint8_t cls)
{
	struct sink *s = u;
	char hex[33];
	for (size_t i = 0; i < sizeof(d->bytes); i++)
		snprintf(hex + 2 * i, 3, "%02x", d->bytes[i]);
	put(s, "digest %s %s\n", hex, cls == CHAFF_SPAM ? "spam" : "ham");
	s->digests++;
	return s->failed ? CHAFF_EIO : 0;
}

static int dump_head(void *u, const struct chaff_db_image *img)
{
	struct sink *s = u;
	put(s,
	    "# chaff dump 1\nseed %016" PRIx64 "\ntokenizer %" PRIu32 "\ntok_flags %" PRIu32
	    "\nspam %" PRIu64 "\nham %" PRIu64 "\nlast_train %" PRId64 "\n",
	    img->seed, img->tokenizer_version, img->tok_flags, img->spam_messages,
	    img->ham_messages, img->last_train);
	const char *const *names = chaff_param_names();
	double vals[] = {img->params.robs,       img->params.robx,        img->params.min_dev,
	                 img->params.ham_cutoff, img->params.spam_cutoff, img->params.max_tokens};
	for (size_t i = 0; names[i]; i++)
		put(s, "param %s %.17g\n", names[i], vals[i]);
	return s->failed ? CHAFF_EIO : 0;
}

/* Whether the closed file at path made it to the disk (fsync). */
static bool synced(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = fsync(fd) == 0;
	close(fd);
	return ok;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

int cmd_dump(int argc, char **argv)
{
	static const char usage[] = "usage: chaff dump [--db DIR] [FILE]   (FILE.gz: compressed; "
	                            "stdout without FILE)\n";
	const char *dbpath = NULL;
	int first = cli_db_opts(argc, argv, usage, &dbpath, NULL, false);
	if (first < 0 || argc - first > 1) {
		if (first >= 0)
			fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *file = first < argc ? argv[first] : NULL;
	chaff_db *db = cli_db_open(dbpath, CHAFF_DB_READONLY);
	if (!db)
		return EXIT_FAIL;
	struct sink s = { NULL, file ? NULL : stdout, false, 0, 0 };
	/* A regular file is written beside itself and renamed over at the
	 * end, so that a dump that fails half-way (a full disk) leaves the
	 * file as it was, perhaps a good earlier dump, not a broken one; the
	 * new file gets the old one's mode (and owner, when that can be
	 * kept), or a new file's. Anything else (a symbolic link, a device),
	 * or a file in a folder that cannot take another, is written in place. */
	char tmp[4200] = "";
	struct stat st;
	bool there = file && lstat(file, &st) == 0;
	bool replace = file && (there ? S_ISREG(st.st_mode) : errno == ENOENT) &&
	               snprintf(tmp, sizeof(tmp), "%s.XXXXXX", file) < (int)sizeof(tmp);
	if (file) {
		int fd = replace ? mkstemp(tmp) : -1;
		if (fd >= 0) {
			mode_t mask = umask(0);
			umask(mask);
			if (fchmod(fd, there ? st.st_mode & 07777 : 0666 & ~mask) != 0 ||
			    (there && (st.st_uid != geteuid() || st.st_gid != getegid()) &&
			     fchown(fd, st.st_uid, st.st_gid) != 0)) {
				/* the old file's mode or owner cannot be given: in place */
				close(fd);
				unlink(tmp);
				fd = -1;
			}
		}
		if (fd < 0) {
			replace = false;
			fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		}
		if (fd >= 0 && ends_with(file, ".gz"))
			s.gz = gzdopen(fd, "wb6");
		else if (fd >= 0)
			s.f = fdopen(fd, "w");
		if (!s.gz && !s.f) {
			cli_error("%s: %s", file, strerror(errno));
			if (fd >= 0)
				close(fd);
			if (replace && fd >= 0)
				unlink(tmp);
			chaff_db_close(db);
			return EXIT_FAIL;
		}
	}
	/* one read transaction: a trainer running meanwhile changes nothing
	 * of what is written */
	static const struct chaff_dump_fns fns = {dump_head, dump_record, dump_digest};
	int rc = chaff_db_dump(db, &fns, &s);
	if (rc == CHAFF_OK)
		put(&s, "# end %" PRIu64 " tokens %" PRIu64 " digests\n", s.tokens, s.digests);
	chaff_db_close(db);
	if (s.gz && gzclose(s.gz) != Z_OK)
		s.failed = true;
	if (file && s.f && fclose(s.f) != 0)
		s.failed = true;
	if (!file && fflush(stdout) != 0)
		s.failed = true;
	if (replace && rc == CHAFF_OK && !s.failed && (!synced(tmp) || rename(tmp, file) != 0))
		s.failed = true;
	if (rc != CHAFF_OK || s.failed) {
		if (replace)
			unlink(tmp);
		cli_error("dump failed: %s%s",
		          s.failed ? "writing the output failed" : chaff_strerror(rc),
		          replace ? "; the file is as it was" : "");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* A decimal number of at most max at *p, as dump writes it (digits only:
 * no sign, no spaces, no leading zero), moving *p past it. */
static bool number(const char **p, uint64_t max, uint64_t *out)
{
	const char *q = *p;
	uint64_t v = 0;
	if (*q < '0' || *q > '9' || (q[0] == '0' && q[1] >= '0' && q[1] <= '9'))
		return false;
	for (; *q >= '0' && *q <= '9'; q++) {
		if (v > (max - (uint64_t)(*q - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*q - '0');
	}
	*p = q;
	*out = v;
	return true;
}

/* n lower-case hexadecimal digits at *p (as dump writes them) into bytes
 * (n even), moving *p past them. */
static bool hex_bytes(const char **p, size_t n, uint8_t *bytes)
{
	for (size_t i = 0; i < n; i++) {
		char c = (*p)[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return false;
		if (i % 2 == 0)
			bytes[i / 2] = (uint8_t)(v << 4);
		else
			bytes[i / 2] |= (uint8_t)v;
	}
	*p += n;
	return true;
}

/* Sixteen hexadecimal digits at *p, as dump writes a 64-bit hash or seed,
 * moving *p past them. */
static bool hex_u64(const char **p, uint64_t *out)
{
	uint8_t b[8];
	if (!hex_bytes(p, 16, b))
		return false;
	*out = 0;
	for (size_t i = 0; i < 8; i++)
		*out = *out << 8 | b[i];
	return true;
}

/* "token HASH SPAM HAM DAY", the whole line and nothing else. */
static bool token_line(const char *line, uint64_t *h, struct chaff_record *r)
{
	const char *p = line + 6;
	uint64_t sp, hm, day;
	if (strncmp(line, "token ", 6) != 0 || !hex_u64(&p, h) || *p++ != ' ' ||
	    !number(&p, UINT32_MAX, &sp) || *p++ != ' ' || !number(&p, UINT32_MAX, &hm) ||
	    *p++ != ' ' || !number(&p, UINT16_MAX, &day) || *p)
		return false;
	/* a token counted in neither class is never stored, so never dumped;
	 * the day is two bytes on disk (days since 1970, to the year 2149) */
	if (sp == 0 && hm == 0)
		return false;
	*r = (struct chaff_record){(uint32_t)sp, (uint32_t)hm, (uint32_t)day};
	return true;
}

/* "digest HEX32 spam|ham", the whole line. */
static bool digest_line(const char *line, struct chaff_digest *d, enum chaff_class *cls)
{
	const char *p = line + 7;
	if (strncmp(line, "digest ", 7) != 0 || !hex_bytes(&p, 2 * sizeof(d->bytes), d->bytes) ||
	    *p++ != ' ')
		return false;
	if (strcmp(p, "spam") == 0)
		*cls = CHAFF_SPAM;
	else if (strcmp(p, "ham") == 0)
		*cls = CHAFF_HAM;
	else
		return false;
	return true;
}

/* "# end N tokens M digests", the whole line. */
static bool end_line(const char *line, uint64_t *tokens, uint64_t *digests)
{
	const char *p = line + 6;
	return strncmp(line, "# end ", 6) == 0 && number(&p, UINT64_MAX, tokens) &&
	       strncmp(p, " tokens ", 8) == 0 && (p += 8, number(&p, UINT64_MAX, digests)) &&
	       strcmp(p, " digests") == 0;
}

/* Header fields, each allowed once: bits of a seen mask (the parameters
 * from bit 8 up, by their place in chaff_param_names). */
enum {
	F_SEED = 1u << 0,
	F_TOKENIZER = 1u << 1,
	F_FLAGS = 1u << 2,
	F_SPAM = 1u << 3,
	F_HAM = 1u << 4,
	F_LAST = 1u << 5,
	F_REQUIRED = F_SEED | F_TOKENIZER | F_FLAGS | F_SPAM | F_HAM | F_LAST,
	F_PARAM0 = 8,
};

/* Every field dump writes: without a parameter the database would score
 * with its default instead of the original's value. */
static unsigned all_fields(void)
{
	unsigned n = 0;
	for (const char *const *p = chaff_param_names(); *p; p++)
		n++;
	return F_REQUIRED | ((1u << n) - 1) << F_PARAM0;
}

/* "NAME VALUE" of a scoring parameter, the whole rest of the line. */
static bool param_line(const char *p, struct chaff_db_image *img, unsigned *field)
{
	const char *sp = strchr(p, ' ');
	if (!sp || sp == p)
		return false;
	const char *const *names = chaff_param_names();
	size_t i = 0;
	while (names[i] &&
	       (strlen(names[i]) != (size_t)(sp - p) || memcmp(names[i], p, (size_t)(sp - p)) != 0))
		i++;
	char *e;
	double v = strtod(sp + 1, &e);
	if (!names[i] || e == sp + 1 || *e || !isfinite(v))
		return false;
	/* written as dump writes it ("%.17g", which reads back exactly): no
	 * space or sign strtod would take, no other spelling of the value */
	char again[64];
	snprintf(again, sizeof(again), "%.17g", v);
	if (strcmp(again, sp + 1) != 0)
		return false;
	*field = 1u << (F_PARAM0 + i);
	return chaff_params_set(&img->params, names[i], v) == CHAFF_OK;
}

/* One header line: the whole line must be its field, its value in range,
 * and no field may come twice. */
static bool header_line(const char *line, struct chaff_db_image *img, unsigned *seen)
{
	static const uint64_t known_flags = CHAFF_TOK_PAIRS | CHAFF_TOK_VERDICT_HEADERS;
	const char *p;
	uint64_t u = 0;
	unsigned f;
	bool ok;
	if (strncmp(line, "param ", 6) == 0) {
		ok = param_line(line + 6, img, &f);
	} else if (strncmp(line, "seed ", 5) == 0) {
		p = line + 5;
		ok = strlen(p) == 16 && hex_u64(&p, &u);
		img->seed = u;
		f = F_SEED;
	} else if (strncmp(line, "tokenizer ", 10) == 0) {
		p = line + 10;
		ok = number(&p, UINT32_MAX, &u) && !*p;
		img->tokenizer_version = (uint32_t)u;
		f = F_TOKENIZER;
	} else if (strncmp(line, "tok_flags ", 10) == 0) {
		p = line + 10;
		ok = number(&p, known_flags, &u) && !*p && (u & ~known_flags) == 0;
		img->tok_flags = (uint32_t)u;
		f = F_FLAGS;
	} else if (strncmp(line, "spam ", 5) == 0 || strncmp(line, "ham ", 4) == 0) {
		bool spam = line[0] == 's';
		p = line + (spam ? 5 : 4);
		ok = number(&p, INT64_MAX, &u) && !*p;
		*(spam ? &img->spam_messages : &img->ham_messages) = u;
		f = spam ? F_SPAM : F_HAM;
	} else if (strncmp(line, "last_train ", 11) == 0) {
		p = line + 11;
		ok = number(&p, INT64_MAX, &u) && !*p;
		img->last_train = (int64_t)u;
		f = F_LAST;
	} else {
		return false;
	}
	if (!ok || (*seen & f))
		return false;
	*seen |= f;
	return true;
}

enum { DAMAGED = -2 };

/* Whether zlib stopped at damaged or cut-short compressed data, which
 * gzgets reports as it reports the end. */
static bool gz_damaged(gzFile in)
{
	int zerr;
	gzerror(in, &zerr);
	return zerr != Z_OK && zerr != Z_STREAM_END;
}

/* Says what stopped the reading: the file could not be read, or its
 * compressed data is damaged. */
static void say_damaged(gzFile in, const char *file)
{
	int zerr;
	int e = errno;
	gzerror(in, &zerr);
	if (zerr == Z_ERRNO)
		cli_error("%s: %s; nothing loaded", file, strerror(e));
	else
		cli_error("%s: damaged or cut short compressed data; nothing loaded", file);
}

/* The next line of a dump into line, its line end dropped: 1, 0 at the
 * end, DAMAGED where the compressed data is, or -1 for a line no dump has
 * (longer than the buffer, a NUL in it, a CR anywhere but before its LF),
 * which read in pieces or cut short would load as something else. */
static int dump_line(gzFile in, char *line, size_t cap)
{
	z_off_t at = gztell(in);
	if (!gzgets(in, line, (int)cap))
		return gz_damaged(in) ? DAMAGED : 0;
	size_t n = strlen(line);
	if (at >= 0 && gztell(in) - at != (z_off_t)n)
		return -1; /* a NUL ended the string early */
	if (n && line[n - 1] == '\n')
		line[--n] = '\0';
	else if (gz_damaged(in))
		return DAMAGED; /* a line cut where the data broke off */
	else if (!gzeof(in))
		return -1; /* the first piece of a longer line */
	if (n && line[n - 1] == '\r')
		line[--n] = '\0';
	return memchr(line, '\r', n) ? -1 : 1;
}

/* The name of the first field of want missing from seen, for a message. */
static const char *missing_field(unsigned want, unsigned seen)
{
	static const char *const fixed[] = {"seed", "tokenizer", "tok_flags",
	                                    "spam", "ham",       "last_train"};
	unsigned gap = want & ~seen;
	for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (gap & 1u << i)
			return fixed[i];
	const char *const *names = chaff_param_names();
	for (unsigned i = 0; names[i]; i++)
		if (gap & 1u << (F_PARAM0 + i))
			return names[i];
	return "a field";
}

/* Reads the header lines into img, up to the first token, digest or end
 * line (left in line, *more set). 0; -1 at a line that is not a header
 * field as the dump writes it or a field given twice (*lineno is then
 * that line); MISSING when a field dump writes is not there (*missing
 * names it). */
enum { MISSING = -3 };
static int parse_header(gzFile in, struct chaff_db_image *img, char *line, size_t cap,
                        size_t *lineno, bool *more, const char **missing)
{
	bool magic = false;
	unsigned seen = 0;
	*more = false;
	chaff_params_default(&img->params);
	int got;
	while ((got = dump_line(in, line, cap)) != 0) {
		(*lineno)++;
		if (got < 0)
			return got;
		if (!magic) {
			if (strcmp(line, "# chaff dump 1") != 0)
				return -1;
			magic = true;
			continue;
		}
		if (strncmp(line, "token ", 6) == 0 || strncmp(line, "digest ", 7) == 0 ||
		    strncmp(line, "# end ", 6) == 0) {
			*more = true;
			break;
		}
		if (!header_line(line, img, &seen))
			return -1;
	}
	if (!magic)
		return -1;
	unsigned all = all_fields();
	*missing = missing_field(all, seen);
	return (seen & all) == all ? 0 : MISSING;
}

int cmd_load(int argc, char **argv)
{
	static const char usage[] = "usage: chaff load [--db DIR] [FILE]   (gzip or plain; stdin "
	                            "without FILE)\nLoads a dump into an empty database.\n";
	const char *dbpath = NULL;
	int first = cli_db_opts(argc, argv, usage, &dbpath, NULL, false);
	if (first < 0 || argc - first > 1) {
		if (first >= 0)
			fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *file = first < argc ? argv[first] : "-";
	bool std = strcmp(file, "-") == 0;
	int fd = std ? dup(STDIN_FILENO) : open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		fd = -1;
		errno = EISDIR;
	}
	gzFile in = fd >= 0 ? gzdopen(fd, "rb") : NULL;
	if (!in) {
		cli_error("%s: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_FAIL;
	}
	struct chaff_db_image img;
	memset(&img, 0, sizeof(img));
	char line[512];
	size_t lineno = 0;
	bool more;
	const char *missing = NULL;
	int hdr = parse_header(in, &img, line, sizeof(line), &lineno, &more, &missing);
	if (hdr == DAMAGED) {
		say_damaged(in, file);
		gzclose(in);
		return EXIT_FAIL;
	}
	if (hdr == MISSING) {
		cli_error("%s: the dump has no %s line; nothing loaded", file, missing);
		gzclose(in);
		return EXIT_FAIL;
	}
	if (hdr < 0 && lineno == 0) {
		cli_error("%s: empty, not a chaff dump; nothing loaded", file);
		gzclose(in);
		return EXIT_FAIL;
	}
	if (hdr < 0) {
		cli_error("%s:%zu: not a chaff dump (or a damaged one); nothing loaded", file, lineno);
		gzclose(in);
		return EXIT_FAIL;
	}
	if (!chaff_params_valid(&img.params)) {
		cli_error(
		        "%s: the dump's scoring parameters are out of range (see 'chaff config'); "
		        "nothing loaded",
		        file);
		gzclose(in);
		return EXIT_FAIL;
	}
	const char *path = cli_db_path(dbpath);
	enum cli_db_before before = cli_db_before(path);
	bool fresh = before != CLI_DB_THERE; /* made by this run, removed if it fails */
	chaff_db *db = cli_db_open(dbpath, CHAFF_DB_CREATE);
	chaff_loader *l = NULL;
	int rc = db ? chaff_loader_new(db, &img, &l) : CHAFF_EDB;
	int status = EXIT_OK;
	if (rc != CHAFF_OK) {
		if (db && rc != CHAFF_EVERSION && rc != CHAFF_EINVAL)
			cli_error("load failed: %s", chaff_strerror(rc));
		status = EXIT_FAIL;
		goto out;
	}
	size_t n = 0, nd = 0;
	uint64_t last_h = 0;
	struct chaff_digest last_d;
	memset(&last_d, 0, sizeof(last_d));
	bool ended = false;
	while (more) {
		uint64_t h, et, ed;
		struct chaff_record r;
		struct chaff_digest d;
		enum chaff_class cls;
		if (ended && line[0]) {
			cli_error("%s:%zu: a line after the end line; nothing loaded", file,
			          lineno);
			status = EXIT_FAIL;
			goto out;
		} else if (ended) {
			/* blank lines at the very end are harmless */
		} else if (token_line(line, &h, &r)) {
			/* a dump lists tokens in key order: a repeat (or a line out
			 * of place) would be counted once but loaded twice */
			if (n && h <= last_h) {
				cli_error("%s:%zu: token %016" PRIx64 " repeated or out of order; "
				          "nothing loaded",
				          file, lineno, h);
				status = EXIT_FAIL;
				goto out;
			}
			last_h = h;
			rc = chaff_loader_put(l, h, &r);
			n++;
		} else if (digest_line(line, &d, &cls)) {
			if (nd && memcmp(d.bytes, last_d.bytes, sizeof(d.bytes)) <= 0) {
				cli_error("%s:%zu: digest repeated or out of order; nothing loaded",
				          file, lineno);
				status = EXIT_FAIL;
				goto out;
			}
			last_d = d;
			rc = chaff_loader_put_digest(l, &d, cls);
			nd++;
		} else if (end_line(line, &et, &ed)) {
			ended = et == n && ed == nd;
			if (!ended) {
				cli_error("%s:%zu: the dump says %llu tokens and %llu digests, %zu and "
				          "%zu were read; nothing loaded",
				          file, lineno, (unsigned long long)et,
				          (unsigned long long)ed, n, nd);
				status = EXIT_FAIL;
				goto out;
			}
		} else {
			cli_error("%s:%zu: bad line; nothing loaded", file, lineno);
			status = EXIT_FAIL;
			goto out;
		}
		if (rc != CHAFF_OK) {
			cli_error("out of memory; nothing loaded");
			status = EXIT_FAIL;
			goto out;
		}
		int got = dump_line(in, line, sizeof(line));
		more = got != 0;
		if (more)
			lineno++;
		if (got == DAMAGED) {
			say_damaged(in, file);
			status = EXIT_FAIL;
			goto out;
		}
		if (got < 0) {
			cli_error("%s:%zu: a line longer than a dump writes, or with a NUL or CR "
			          "inside; nothing loaded",
			          file, lineno);
			status = EXIT_FAIL;
			goto out;
		}
	}
	if (!ended) {
		cli_error("%s: the dump is cut short (no end line); nothing loaded", file);
		status = EXIT_FAIL;
		goto out;
	}
	rc = chaff_loader_commit(l);
	if (rc != CHAFF_OK) {
		if (rc != CHAFF_EINVAL) /* the library said why: trained meanwhile */
			cli_error("load failed: %s; nothing loaded", chaff_strerror(rc));
		status = EXIT_FAIL;
		goto out;
	}
	printf("loaded %zu tokens, %zu digests, %llu spam and %llu ham messages\n", n, nd,
	       (unsigned long long)img.spam_messages, (unsigned long long)img.ham_messages);
out:
	chaff_loader_free(l);
	if (status != EXIT_OK && fresh)
		cli_db_close_unmade(db, path, before);
	else
		chaff_db_close(db);
	gzclose(in);
	return status;
}
