/*
 * Reading messages. Small files are read whole (runs of them in one
 * folder ahead, through io_uring); large ones, gzip files and stdin
 * stream through one buffer. An mbox is split on "From " lines
 * that follow a blank line (or start the file), and ">From " quoting is
 * undone one level, which is right for mboxrd and for all but the rarest
 * mboxo lines.
 */
#include "input.h"

#include "cli.h"

#include "common/bigmem.h"
#include "common/findpair.h"
#include "common/grow.h"

#include "chaff.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef CHAFF_HAVE_URING
#include <liburing.h>
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct entry {
	char *path;
	int label; /* from a TREC index: CHAFF_SPAM, CHAFF_HAM; else -1 */
	/* Why path cannot be read, found while listing the input (a folder
	 * that cannot be opened, a line of an index that names no file), or
	 * NULL: the error is reported in its place, when the entry is
	 * reached, so that a classification still scores the rest and a
	 * training run (which checks every entry first) trains nothing. */
	const char *error;
};

/* A folder, by device and inode. */
struct folder_id {
	dev_t dev;
	ino_t ino;
};

/* A block of file names, one after another, each ended by a NUL. */
struct names {
	struct names *next; /* the block filled before */
	size_t used, cap;   /* bytes, this header included */
};

enum { NAMES_FIRST = 16 << 10, NAMES_SECOND = 256 << 10, NAMES_BLOCK = 2 << 20 };

struct input {
	struct entry *paths; /* files to read, in order */
	struct names *names; /* their names */
	size_t npaths, pcap, next;
	int label; /* of the file being read */
	/* The file being read: buf[pos, len) is not yet returned. */
	struct chaff_buf b;
	size_t len, pos, index;
	gzFile gz; /* a gzip file or stdin, streamed through zlib */
	int fd;    /* a large plain file, streamed with read(); else -1 */
	size_t left; /* bytes of it still to read, by its size when opened */
	bool loaded, eof, mbox;
	const char *cur;
	size_t bytes;
	char *unquoted; /* one message with ">From " unquoted */
	size_t ucap;
	/* The folder of the last file opened, kept open: a Maildir or an
	 * index names thousands of files in a few folders, and opening each
	 * by its name relative to its folder spares the kernel the walk down
	 * the whole path (a file in 8 µs instead of 11 here). */
	int dirfd;
	char *dir;
	size_t dlen, dcap;
	/* A small file read ahead (see ahead_fill): the message is view[0,
	 * len) instead of buf's. */
	const char *view;
	struct ahead *ahead;
	/* The folders walked so far: a symbolic link back to a folder
	 * already read (a loop, or a second way into one) is not read again. */
	struct folder_id *walked;
	size_t nwalked, wcap;
};

/* A copy of path p in the input's blocks of names: NULL when out of
 * memory. An index or a folder names thousands of files; a name each
 * from malloc faulted the heap in 4 KB page by page (a fifth of a
 * millisecond per thousand names here), where a block of 2 MB is one
 * page. The first blocks are small (16 and 256 KB, from malloc):
 * standard input, or a folder of a few hundred files, needs no more. */
static char *keep_name(struct input *in, const char *dir, const char *p)
{
	size_t dl = strlen(dir), n = dl + strlen(p) + 1;
	struct names *b = in->names;
	if (!b || b->cap - b->used < n) {
		size_t cap = !b ? NAMES_FIRST : b->cap < NAMES_SECOND ? NAMES_SECOND : NAMES_BLOCK;
		if (cap < n + sizeof(*b))
			cap = n + sizeof(*b);
		b = cap < NAMES_BLOCK ? malloc(cap) : chaff_big_alloc(cap);
		if (!b)
			return NULL;
		b->next = in->names;
		b->used = sizeof(*b);
		b->cap = cap;
		in->names = b;
	}
	char *q = (char *)b + b->used;
	memcpy(q, dir, dl);
	memcpy(q + dl, p, n - dl);
	b->used += n;
	return q;
}

static void free_names(struct input *in)
{
	while (in->names) {
		struct names *b = in->names;
		in->names = b->next;
		if (b->cap < NAMES_BLOCK)
			free(b);
		else
			chaff_big_free(b, b->cap);
	}
}

/* Queues the file dir + p (dir empty, or a folder's path ending in '/'). */
static int push_label(struct input *in, const char *dir, const char *p, int label)
{
	if (in->npaths == in->pcap) {
		size_t cap = in->pcap ? in->pcap * 2 : 64;
		struct entry *n = realloc(in->paths, cap * sizeof(*n));
		if (!n)
			return -1;
		in->paths = n;
		in->pcap = cap;
	}
	in->paths[in->npaths].path = keep_name(in, dir, p);
	in->paths[in->npaths].label = label;
	in->paths[in->npaths].error = NULL;
	if (!in->paths[in->npaths].path)
		return -1;
	in->npaths++;
	return 0;
}

static int push_path(struct input *in, const char *p)
{
	return push_label(in, "", p, -1);
}

/* Queues an error in place of what path would have given (see struct
 * entry); the message is printf-style. */
__attribute__((format(printf, 3, 4))) static int push_error(struct input *in, const char *path,
                                                            const char *fmt, ...)
{
	char why[4400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (push_path(in, path) < 0)
		return -1;
	struct entry *e = &in->paths[in->npaths - 1];
	e->error = keep_name(in, "", why);
	return e->error ? 0 : -1;
}

/* The label of an index line ("spam PATH" or "ham PATH"), or -1; *path
 * is set to where the path starts (after the spaces). */
static int index_label(const char *line, const char **path)
{
	int label = strncasecmp(line, "spam ", 5) == 0  ? CHAFF_SPAM
	            : strncasecmp(line, "ham ", 4) == 0 ? CHAFF_HAM
	                                                : -1;
	if (label < 0)
		return -1;
	const char *p = strchr(line, ' ');
	while (*p == ' ')
		p++;
	*path = p;
	return *p ? label : -1;
}

/* Drops the line end and trailing spaces of an index line; its length. */
static size_t chomp(char *line)
{
	size_t l = strlen(line);
	while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' '))
		line[--l] = '\0';
	return l;
}

/* The folder an index's path is in: the index's own, or none for an
 * absolute path. */
static const char *index_dir(const char *dir, const char *path)
{
	return *path == '/' ? "" : dir;
}

/* Joins an index's folder and a path in it (absolute paths stay). */
static void index_path(char *out, size_t size, const char *dir, const char *path)
{
	snprintf(out, size, "%s%s", index_dir(dir, path), path);
}

/* A TREC-style index: lines "spam PATH" or "ham PATH", paths relative to
 * the index's folder; gzip-compressed or not. Recognised by its first
 * line, when that names a file that is there, or when the second line is
 * an index line too, or when it is the only line and names one path (no
 * spaces): a message whose text starts "ham sandwich" is not an index,
 * nor one in the old header syntax that allows a space before the colon
 * ("Spam : yes"). Only regular files are read: a FIFO would block.
 * A line that is no index line, and damaged gzip data, are queued as
 * errors (push_error); -1 only when out of memory. */
static int try_index(struct input *in, const char *path, bool *was)
{
	*was = false;
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return 0; /* reported when read as a message */
	gzFile f = gzopen(path, "rb");
	if (!f)
		return 0;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		slash[1] = '\0';
	else
		dir[0] = '\0';
	char line[4096], full[8192];
	const char *p;
	if (!gzgets(f, line, sizeof(line)) || index_label(line, &p) < 0) {
		gzclose(f);
		return 0;
	}
	chomp(line);
	index_path(full, sizeof(full), dir, p);
	bool index = stat(full, &st) == 0;
	if (!index && *p != ':') {
		/* a missing first file (a Maildir message renamed since, its
		 * path with a colon): an index all the same when a second index
		 * line follows, or when this one line is a plain path (its
		 * absence is then reported) rather than words; a path starting
		 * with a colon is a header in the old syntax ("Spam : yes") */
		bool one_word = !strpbrk(p, " \t");
		bool more;
		while ((more = gzgets(f, line, sizeof(line)) != NULL) && chomp(line) == 0)
			; /* blank lines, as the index's reader skips them */
		index = more ? index_label(line, &p) >= 0 : one_word;
	}
	if (!index || gzrewind(f) != 0) {
		gzclose(f);
		return 0;
	}
	*was = true;
	size_t lineno = 0;
	int rc = 0;
	while (gzgets(f, line, sizeof(line))) {
		lineno++;
		if (chomp(line) == 0)
			continue;
		int label = index_label(line, &p);
		if (label < 0)
			rc = push_error(in, path, "%s:%zu: expected 'spam PATH' or 'ham PATH'",
			                path, lineno);
		else
			rc = push_label(in, index_dir(dir, p), p, label);
		if (rc < 0)
			break;
	}
	/* gzgets ends at damaged or cut-short data as at the end: an index
	 * read only so far must not pass for the whole */
	int zerr = Z_OK;
	gzerror(f, &zerr);
	if (rc == 0 && zerr != Z_OK && zerr != Z_STREAM_END)
		rc = push_error(in, path, "%s: damaged or cut short gzip data", path);
	gzclose(f);
	return rc;
}

/* By name, past the type byte in front. */
static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a + 1, *(char *const *)b + 1);
}

static bool is_dir(const char *dir, const char *name)
{
	char p[4200];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Files below dir in name order, so runs are repeatable. Dot files (and
 * with them Maildir++ subfolders) and Maildir's tmp/ (messages still
 * being written) are skipped, and in a Maildir (a folder with cur/ or
 * new/) only cur/ and new/ are read: beside them lie the mail server's
 * own files (dovecot-uidlist, index caches, subscriptions). */
static int walk(struct input *in, const char *dir, char *errbuf, size_t errlen)
{
	bool maildir = is_dir(dir, "cur") || is_dir(dir, "new");
	DIR *d = opendir(dir);
	if (!d)
		return push_error(in, dir, "%s: %s", dir, strerror(errno));
	struct stat ds;
	if (fstat(dirfd(d), &ds) == 0) {
		for (size_t i = 0; i < in->nwalked; i++)
			if (in->walked[i].dev == ds.st_dev && in->walked[i].ino == ds.st_ino) {
				closedir(d);
				cli_warn("%s: a folder already read (through a symbolic link); "
				         "not read again",
				         dir);
				return 0;
			}
		if (chaff_reserve((void **)&in->walked, &in->wcap, in->nwalked + 1,
		                  sizeof(*in->walked))) {
			closedir(d);
			snprintf(errbuf, errlen, "%s: out of memory", dir);
			return -1;
		}
		in->walked[in->nwalked++] = (struct folder_id){ds.st_dev, ds.st_ino};
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int rc = 0;
	/* the file type readdir gives, in the byte before each name, saves a
	 * stat per file; names without it are looked at with stat */
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "tmp") == 0 ||
		    (maildir && strcmp(e->d_name, "cur") != 0 && strcmp(e->d_name, "new") != 0))
			continue;
		char type = e->d_type == DT_REG ? 'f' : e->d_type == DT_DIR ? 'd' : '?';
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				rc = -1;
				break;
			}
			names = nn;
		}
		size_t l = strlen(dir) + strlen(e->d_name) + 3;
		names[n] = malloc(l);
		if (!names[n]) {
			rc = -1;
			break;
		}
		snprintf(names[n], l, "%c%s/%s", type, dir, e->d_name);
		n++;
	}
	closedir(d);
	if (rc == 0 && n)
		qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 0; i < n; i++) {
		char type = names[i][0];
		const char *name = names[i] + 1;
		struct stat st;
		/* a symbolic link (or a name readdir gave no type) is what it
		 * points at; one that points nowhere, or where this user may
		 * not look, is queued as a file so that reading it says why */
		if (rc == 0 && type == '?')
			type = stat(name, &st) != 0  ? 'f'
			       : S_ISDIR(st.st_mode) ? 'd'
			       : S_ISREG(st.st_mode) ? 'f'
			                             : '?';
		if (rc == 0 && type == 'd')
			rc = walk(in, name, errbuf, errlen);
		else if (rc == 0 && type == 'f' && push_path(in, name) < 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	if (rc < 0 && !errbuf[0])
		snprintf(errbuf, errlen, "%s: out of memory", dir);
	return rc;
}

int input_open(struct input **out, char *const *paths, size_t npaths, char *errbuf,
               size_t errlen)
{
	errbuf[0] = '\0';
	struct input *in = calloc(1, sizeof(*in));
	if (!in) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	in->fd = -1;
	in->dirfd = -1;
	int rc = 0;
	if (npaths == 0)
		rc = push_path(in, "-");
	for (size_t i = 0; i < npaths && rc == 0; i++) {
		struct stat st;
		bool index = false;
		if (strcmp(paths[i], "-") != 0 && stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
			rc = walk(in, paths[i], errbuf, errlen);
		else if (strcmp(paths[i], "-") != 0 &&
		         (rc = try_index(in, paths[i], &index)) == 0 && index)
			continue;
		else if (rc == 0)
			rc = push_path(in, paths[i]); /* errors surface when read */
	}
	if (rc < 0) {
		if (!errbuf[0])
			snprintf(errbuf, errlen, "out of memory");
		input_close(in);
		return -1;
	}
	*out = in;
	return 0;
}

/* A large file is read STEP bytes at a time into the front of one
 * buffer: the part being split and tokenized stays in the core's cache. */
enum { SMALL_FILE = 1 << 20, CHUNK = 4 << 20, STEP = 256 << 10 };

static void release(struct input *in)
{
	if (in->gz)
		gzclose(in->gz);
	in->gz = NULL;
	if (in->fd >= 0)
		close(in->fd);
	in->fd = -1;
	in->view = NULL;
	in->len = in->pos = in->index = 0;
	in->loaded = in->eof = false;
	if (in->b.mapped) /* a large message's: the next file starts small again */
		chaff_buf_free(&in->b);
}

/* Room in the buffer for at least n bytes, in->len of them kept. A
 * message larger than CHUNK moves it to a mapping that grows without
 * copying (struct chaff_buf), given back when the file is done (release):
 * grown in the heap, a 100 MB message was copied at each doubling, and
 * the heap kept its pages to the end of the run. */
static int reserve(struct input *in, size_t n)
{
	return chaff_buf_reserve(&in->b, n, in->len, CHUNK) == CHAFF_OK ? 0 : -1;
}

/* Small files, the usual Maildir message, are read whole with read(). */
static int read_small(struct input *in, int fd, size_t size)
{
	if (reserve(in, size + 1) < 0)
		return -1;
	size_t n = 0;
	while (n < size) {
		ssize_t r = read(fd, in->b.p + n, size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			/* Another program cut the file short: its message would
			 * be taken half, so the file is an error, as in fill(). */
			errno = ESTALE;
			return -1;
		}
		n += (size_t)r;
	}
	in->len = n;
	in->eof = true;
	return 0;
}

/*
 * Large files and stdin stream through one reused buffer, gzip files
 * through zlib. The unread tail moves to the front before each read; the
 * buffer grows only for a message larger than itself. Reading a step at a
 * time keeps the working set in cache: mapping the file whole, or reading
 * it in large pieces, made the first pass over each page (the mbox
 * splitter) wait on memory instead.
 */
static int fill(struct input *in)
{
	if (in->pos) {
		memmove(in->b.p, in->b.p + in->pos, in->len - in->pos);
		in->len -= in->pos;
		in->pos = 0;
	}
	/* A step, or as much again as the unfinished message already holds:
	 * a message is scanned anew after each read, so for one larger than
	 * a step the reads grow with it and the scans stay linear in all. A
	 * file is read as far as its size when opened, so a message being
	 * appended meanwhile is not taken half. */
	size_t want = in->len > STEP ? in->len : STEP;
	if (want > 1u << 30)
		want = 1u << 30;
	if (in->fd >= 0 && want > in->left)
		want = in->left;
	if (reserve(in, in->len + want) < 0)
		return -1;
	ssize_t r = 0;
	if (in->fd >= 0 && want) {
		do
			r = read(in->fd, in->b.p + in->len, want);
		while (r < 0 && errno == EINTR);
		/* Another program cut the file short: its last message would
		 * be read half, so the file is an error instead. */
		if (r == 0) {
			errno = ESTALE;
			return -1;
		}
		if (r > 0)
			in->left -= (size_t)r < in->left ? (size_t)r : in->left;
	} else if (in->fd < 0) {
		r = gzread(in->gz, in->b.p + in->len, (unsigned)want);
		/* zlib ends a stream cut short like a whole one and says so only
		 * through gzerror: its last message would be taken half. */
		int zerr = Z_OK;
		if (r <= 0)
			gzerror(in->gz, &zerr);
		if (r < 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
			errno = zerr == Z_ERRNO ? errno : EBADMSG;
			return -1;
		}
	}
	if (r < 0)
		return -1;
	if (r == 0)
		in->eof = true;
	in->len += (size_t)r;
	return 0;
}

/* What went wrong reading a file, in words. */
static const char *read_error(int e)
{
	if (e == ESTALE)
		return "the file was cut short while being read; its last message was left out";
	if (e == EINVAL)
		return "not a regular file";
	if (e == EBADMSG)
		return "damaged or cut short gzip data";
	return strerror(e);
}

/* The kept descriptor of path's folder, opening it when path lies in
 * another (*name: path's last part), or -1 when there is none to keep
 * (no folder in path, or it cannot be opened). */
static int folder(struct input *in, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path || !slash[1])
		return -1;
	*name = slash + 1;
	size_t dl = (size_t)(slash - path);
	if (in->dirfd < 0 || dl != in->dlen || memcmp(in->dir, path, dl) != 0) {
		if (in->dirfd >= 0)
			close(in->dirfd);
		in->dirfd = -1;
		if (chaff_reserve((void **)&in->dir, &in->dcap, dl + 1, 1))
			return -1;
		memcpy(in->dir, path, dl);
		in->dir[dl] = '\0';
		in->dlen = dl;
		in->dirfd = open(in->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	return in->dirfd;
}

/* Opens path for reading, relative to its folder's descriptor when that
 * is (or can be) kept; the same result and errno as open(path). */
static int open_in_dir(struct input *in, const char *path)
{
	const char *name;
	int dfd = folder(in, path, &name);
	/* O_NONBLOCK: a FIFO opens at once and is refused as not a regular
	 * file, instead of waiting for a writer; regular files ignore it */
	int fl = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
	return dfd < 0 ? open(path, fl) : openat(dfd, name, fl);
}

/* True when data starts as a gzip file does. */
static bool gzip_magic(const char *p, size_t n)
{
	return n >= 2 && (unsigned char)p[0] == 0x1f && (unsigned char)p[1] == 0x8b;
}

/* The file being read is path, its first bytes at data. */
static void loaded(struct input *in, const char *path, const char *data)
{
	in->cur = path;
	in->loaded = true;
	/* A file that starts with a "From " line, perhaps after blank lines,
	 * is an mbox; a single message saved with its envelope line is an
	 * mbox of one. The blank lines are no message. */
	size_t k = 0;
	while (k < in->len &&
	       (data[k] == '\n' || (data[k] == '\r' && k + 1 < in->len && data[k + 1] == '\n')))
		k += data[k] == '\r' ? 2 : 1;
	in->mbox = in->len - k >= 5 && memcmp(data + k, "From ", 5) == 0;
	if (in->mbox)
		in->pos = k;
}

#ifdef CHAFF_HAVE_URING
/*
 * Reading ahead. Scoring a Maildir or the files of an index means
 * thousands of small files, and on a virtual machine each system call is
 * dear: open, fstat, read and close cost 8 µs a file here. Runs of files
 * in one folder are read AHEAD at a time in two io_uring submissions: the
 * kernel opens them all; each is checked with fstat (io_uring's own statx
 * goes to a kernel worker thread and was slower than the plain calls);
 * then the kernel reads each regular file of at most SLOT bytes, whole,
 * into a slot of its own, and closes it. Nothing but a regular file is
 * ever read here. Every other file (not a regular file, empty, larger
 * than a slot) is handed on open to the plain path, and a regular file
 * that was not read whole (short, failed, gzip) is opened again by it:
 * the plain path gives its usual result or message. A file is never
 * opened twice unless it is a regular file: opening a FIFO wakes its
 * writer, which may be gone by a second open. Where io_uring is missing
 * or refused (old kernels, some container policies), or the process runs
 * out of descriptors, every file is read the plain way.
 */
/* a slot and its spare byte make 64 KB, and the 32 slots one 2 MB page */
enum { AHEAD = 32, SLOT = (64 << 10) - 1 };

struct ahead {
	struct io_uring ring;
	bool ready;
	char *mem;              /* AHEAD slots of SLOT + 1 bytes */
	size_t first, n;        /* paths[first, first + n) were read ahead */
	int fd[AHEAD];          /* opened by the ring and ours to close or hand on; else -1 */
	int32_t len[AHEAD];     /* a whole file's bytes, or -1: read it the plain way */
	int32_t res[2 * AHEAD]; /* results: k an open or a read, AHEAD + k a close */
};

/* Sets the ring up on first use; false when io_uring is not there. */
static bool ahead_ready(struct input *in)
{
	if (in->ahead)
		return in->ahead->ready;
	struct ahead *a = calloc(1, sizeof(*a));
	if (!a)
		return false;
	in->ahead = a;
	for (size_t k = 0; k < AHEAD; k++)
		a->fd[k] = -1;
	/* 2 MB, filled afresh for every 32 files: in 2 MB pages it is one
	 * first touch instead of five hundred */
	a->mem = chaff_big_alloc((size_t)AHEAD * (SLOT + 1));
	a->ready = a->mem && io_uring_queue_init(2 * AHEAD, &a->ring, 0) == 0;
	return a->ready;
}

/* Closes the descriptors still ours. */
static void ahead_close(struct ahead *a)
{
	for (size_t k = 0; k < AHEAD; k++)
		if (a->fd[k] >= 0) {
			close(a->fd[k]);
			a->fd[k] = -1;
		}
}

/* Submits the queued requests and collects the completions of those
 * submitted into res; *submitted says how many were (in queue order).
 * False when not all were submitted or a wait failed. */
static bool ahead_run(struct ahead *a, unsigned queued, unsigned *submitted)
{
	for (size_t k = 0; k < 2 * AHEAD; k++)
		a->res[k] = INT32_MIN; /* not completed */
	int rc;
	do /* an interrupted call submits nothing: it is tried again */
		rc = io_uring_submit_and_wait(&a->ring, queued);
	while (rc == -EINTR);
	unsigned got = 0, want = rc > 0 ? (unsigned)rc : 0;
	*submitted = want;
	while (got < want) {
		struct io_uring_cqe *c;
		int w = io_uring_wait_cqe(&a->ring, &c);
		if (w == -EINTR)
			continue;
		if (w < 0)
			break;
		uint64_t d = c->user_data;
		if (d < 2 * AHEAD)
			a->res[d] = c->res;
		io_uring_cqe_seen(&a->ring, c);
		got++;
	}
	return rc == (int)queued && got == want;
}

/* The ring misbehaved, or descriptors ran out: the descriptors still
 * ours are closed, and the ring is not used again (its own descriptor
 * goes back to the plain path). */
static void ahead_give_up(struct ahead *a)
{
	ahead_close(a);
	io_uring_queue_exit(&a->ring);
	a->ready = false;
	a->n = 0;
}

/* Reads ahead from paths[i]: the files in its folder that follow it,
 * up to AHEAD; nothing when there are fewer than two. */
static void ahead_fill(struct input *in, size_t i)
{
	const char *name;
	int dfd = folder(in, in->paths[i].path, &name);
	if (dfd < 0)
		return;
	size_t dl = (size_t)(name - in->paths[i].path), n = 0;
	while (i + n < in->npaths && n < AHEAD) {
		const char *p = in->paths[i + n].path;
		if (strncmp(p, in->paths[i].path, dl) != 0 || !p[dl] || strchr(p + dl, '/') ||
		    in->paths[i + n].error)
			break;
		n++;
	}
	if (n < 2 || !ahead_ready(in))
		return;
	struct ahead *a = in->ahead;
	ahead_close(a); /* files of the last run not taken (none, as input_next goes) */
	a->first = i;
	a->n = 0;
	for (size_t k = 0; k < n; k++) {
		struct io_uring_sqe *s = io_uring_get_sqe(&a->ring);
		io_uring_prep_openat(s, dfd, in->paths[i + k].path + dl,
		                     O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
		s->user_data = k;
	}
	unsigned submitted;
	bool ok = ahead_run(a, (unsigned)n, &submitted);
	bool out_of_fds = false;
	for (size_t k = 0; k < n; k++) {
		a->fd[k] = a->res[k] >= 0 ? a->res[k] : -1;
		out_of_fds |= a->res[k] == -EMFILE || a->res[k] == -ENFILE;
	}
	/* (an open submitted whose completion never came leaves its
	 * descriptor unknown: only a failing kernel does that) */
	if (!ok || out_of_fds) {
		ahead_give_up(a);
		return;
	}
	unsigned queued = 0;
	size_t want[AHEAD];
	unsigned close_at[AHEAD];
	for (size_t k = 0; k < n; k++) {
		want[k] = close_at[k] = 0;
		struct stat st;
		if (a->fd[k] < 0 || fstat(a->fd[k], &st) != 0 || !S_ISREG(st.st_mode) ||
		    st.st_size == 0 || st.st_size > SLOT)
			continue; /* handed on open to the plain path */
		want[k] = (size_t)st.st_size;
		struct io_uring_sqe *s = io_uring_get_sqe(&a->ring);
		io_uring_prep_read(s, a->fd[k], a->mem + k * (SLOT + 1), (unsigned)want[k], 0);
		s->user_data = k;
		/* the close follows, whatever the read gave */
		s->flags |= IOSQE_IO_HARDLINK;
		s = io_uring_get_sqe(&a->ring);
		io_uring_prep_close(s, a->fd[k]);
		s->user_data = AHEAD + k;
		close_at[k] = queued + 1;
		queued += 2;
	}
	ok = queued == 0 || ahead_run(a, queued, &submitted);
	for (size_t k = 0; k < n; k++)
		if (want[k] && (ok || close_at[k] < submitted))
			a->fd[k] = -1; /* the ring closes it; closing it again could hit a new file */
	if (!ok) {
		ahead_give_up(a);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		const char *slot = a->mem + k * (SLOT + 1);
		bool whole = want[k] && a->res[k] == (int32_t)want[k] && !gzip_magic(slot, want[k]);
		a->len[k] = whole ? (int32_t)want[k] : -1;
	}
	a->n = n;
}

/* True when paths[i] was read ahead whole: it is then the file being
 * read. Otherwise *fd is the file opened for the plain path, or -1. */
static bool ahead_take(struct input *in, size_t i, int *fd)
{
	*fd = -1;
	struct ahead *a = in->ahead;
	if (!a || i < a->first || i >= a->first + a->n) {
		if (strcmp(in->paths[i].path, "-") == 0 || (a && !a->ready))
			return false;
		ahead_fill(in, i);
		a = in->ahead;
	}
	if (!a || i < a->first || i >= a->first + a->n)
		return false;
	size_t k = i - a->first;
	if (a->len[k] < 0) {
		*fd = a->fd[k];
		a->fd[k] = -1;
		return false;
	}
	in->view = a->mem + k * (SLOT + 1);
	in->len = (size_t)a->len[k];
	in->pos = in->index = 0;
	in->bytes += in->len;
	in->eof = true;
	loaded(in, in->paths[i].path, in->view);
	return true;
}

static void ahead_free(struct input *in)
{
	if (!in->ahead)
		return;
	ahead_close(in->ahead);
	if (in->ahead->ready)
		io_uring_queue_exit(&in->ahead->ring);
	chaff_big_free(in->ahead->mem, (size_t)AHEAD * (SLOT + 1));
	free(in->ahead);
}
#else
static bool ahead_take(struct input *in, size_t i, int *fd)
{
	(void)in;
	(void)i;
	*fd = -1;
	return false;
}

static void ahead_free(struct input *in)
{
	(void)in;
}
#endif

/* Opens path (unless given is already its descriptor, which load then
 * owns) and starts reading it. */
static int load(struct input *in, const char *path, int given, char *errbuf, size_t errlen)
{
	bool std = strcmp(path, "-") == 0;
	int fd = given >= 0 ? given : std ? dup(STDIN_FILENO) : open_in_dir(in, path);
	if (fd < 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	/* A file given as stdin is read from where its reader stands. */
	off_t start = 0;
	if (regular && std) {
		start = lseek(fd, 0, SEEK_CUR);
		if (start < 0 || start > st.st_size)
			start = st.st_size;
	}
	size_t size = regular ? (size_t)(st.st_size - start) : 0;
	in->bytes += size;
	int rc = 0;
	in->len = in->pos = in->index = 0;
	in->eof = false;
	bool small = regular && size <= SMALL_FILE, gz = false;
	if (small) {
		/* a Maildir message: read whole, and only a gzip file among
		 * them is read again, through zlib (no look at its first two
		 * bytes before: one system call less per message) */
		rc = read_small(in, fd, size);
		gz = rc == 0 && gzip_magic(in->b.p, in->len);
		if (gz && lseek(fd, start, SEEK_SET) != start)
			rc = -1;
		if (gz) {
			in->len = 0;
			in->eof = false;
		}
	} else if (regular) {
		unsigned char magic[2] = { 0, 0 };
		gz = pread(fd, magic, 2, start) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
	}
	if (rc < 0) {
		close(fd);
	} else if (!regular && !std) {
		close(fd);
		errno = EINVAL;
		rc = -1;
	} else if (small && !gz) {
		close(fd);
	} else if (regular && !gz) {
		in->fd = fd;
		in->left = size;
		rc = fill(in);
	} else {
		in->gz = gzdopen(fd, "rb");
		if (!in->gz) {
			close(fd);
			rc = -1;
		} else {
			gzbuffer(in->gz, 1 << 17);
			rc = fill(in);
		}
	}
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s: %s", path, read_error(errno));
		release(in);
		return -1;
	}
	loaded(in, path, in->b.p);
	return 0;
}

/* Undoes one level of ">From " quoting: where the message lies in the
 * read buffer (writable is then its own, in->b.p + pos), in place, as
 * unquoting only ever shortens it; else (a small file read ahead) into a
 * buffer of its own. */
static int unquote(struct input *in, const char *p, char *writable, size_t n, const char **out,
                   size_t *olen)
{
	char *dst = writable;
	if (!dst) {
		if (in->ucap < n) {
			char *nb = realloc(in->unquoted, n);
			if (!nb)
				return -1;
			in->unquoted = nb;
			in->ucap = n;
		}
		dst = in->unquoted;
	}
	size_t o = 0, i = 0;
	while (i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - p) + 1 : n;
		size_t k = i;
		while (k < e && p[k] == '>')
			k++;
		if (k > i && e - k >= 5 && memcmp(p + k, "From ", 5) == 0)
			i++;
		memmove(dst + o, p + i, e - i); /* o <= i: in place, it moves down */
		o += e - i;
		i = e;
	}
	*out = dst;
	*olen = o;
	return 0;
}

/* Length of the mbox message at p, or 0 when no "From " line after a blank
 * line ends it within rest. *quoted tells whether a ">From " line needs
 * unquoting, so that other messages are never copied. Both are found by
 * looking at each "Fr" in the text: far rarer than line ends. */
static size_t mbox_message(const char *p, size_t rest, bool *quoted)
{
	const char *end = p + rest, *q = p + 1;
	*quoted = false;
	while (q < end) {
		/* each "Fr": an 'F' alone is too common in text (a memchr
		 * call per 240 bytes of the corpus) */
		const char *f = chaff_find_pair(q, end, 'F', 'r');
		if (!f)
			break;
		q = f + 1;
		if (end - f < 5 || memcmp(f, "From ", 5) != 0)
			continue;
		const char *b = f;
		while (b > p && b[-1] == '>')
			b--;
		if (b == p || b[-1] != '\n')
			continue;
		if (b < f) {
			*quoted = true;
			continue;
		}
		/* A separator needs a blank line before it. */
		const char *prev = b - 1;
		if ((prev > p && prev[-1] == '\n') ||
		    (prev > p + 1 && prev[-1] == '\r' && prev[-2] == '\n'))
			return (size_t)(f - p);
	}
	return 0;
}

int input_next(struct input *in, struct input_msg *msg, char *errbuf, size_t errlen)
{
	for (;;) {
		if (in->loaded) {
			size_t rest = in->len - in->pos, n = rest;
			bool quoted = false;
			const char *base = in->view ? in->view : in->b.p;
			if (in->mbox)
				n = mbox_message(base + in->pos, rest, &quoted);
			/* The message may go on past what has been read. */
			if ((n == 0 || !in->mbox) && !in->eof) {
				if (fill(in) < 0) {
					snprintf(errbuf, errlen, "%s: %s", in->cur, read_error(errno));
					release(in);
					return -1;
				}
				continue;
			}
			if (n == 0)
				n = rest;
			/* An empty file still counts as one (empty) message. */
			if (n > 0 || in->index == 0) {
				const char *p = base ? base + in->pos : "";
				in->pos += n;
				msg->path = in->cur;
				msg->index = in->index++;
				/* A file holding one message is named by its path. */
				msg->in_mbox = in->mbox && !(msg->index == 0 && in->eof &&
				                             in->pos >= in->len);
				msg->label = in->label;
				msg->data = p;
				msg->len = n;
				/* (in the read buffer, p is writable there) */
				char *own = quoted && !in->view ? in->b.p + (in->pos - n) : NULL;
				if (quoted && unquote(in, p, own, n, &msg->data, &msg->len) < 0) {
					snprintf(errbuf, errlen, "%s: out of memory", in->cur);
					return -1;
				}
				return 1;
			}
			release(in);
		}
		if (in->next >= in->npaths)
			return 0;
		const struct entry *e = &in->paths[in->next++];
		if (e->error) {
			snprintf(errbuf, errlen, "%s", e->error);
			return -1;
		}
		in->label = e->label;
		int fd;
		if (!ahead_take(in, in->next - 1, &fd) && load(in, e->path, fd, errbuf, errlen) < 0)
			return -1;
	}
}

const char *input_unlabelled(const struct input *in)
{
	for (size_t i = 0; i < in->npaths; i++)
		if (in->paths[i].label < 0 && !in->paths[i].error)
			return in->paths[i].path;
	return NULL;
}

bool input_is_bulk(const struct input *in)
{
	if (in->npaths >= CLI_BULK_MESSAGES)
		return true;
	uint64_t total = 0;
	for (size_t i = 0; i < in->npaths; i++) {
		struct stat st;
		if (strcmp(in->paths[i].path, "-") != 0 && stat(in->paths[i].path, &st) == 0 &&
		    S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	return total >= CLI_BULK_BYTES;
}

int input_check(struct input *in, uint64_t *total, char *errbuf, size_t errlen)
{
	*total = 0;
	for (size_t i = 0; i < in->npaths; i++) {
		const char *p = in->paths[i].path;
		if (in->paths[i].error) {
			snprintf(errbuf, errlen, "%s", in->paths[i].error);
			return -1;
		}
		if (strcmp(p, "-") == 0)
			continue;
		struct stat st;
		if (stat(p, &st) != 0 || access(p, R_OK) != 0) {
			snprintf(errbuf, errlen, "%s: %s", p, strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(errbuf, errlen, "%s: not a regular file", p);
			return -1;
		}
		*total += (uint64_t)st.st_size;
	}
	return 0;
}

size_t input_bytes(const struct input *in)
{
	return in->bytes;
}

void input_close(struct input *in)
{
	if (!in)
		return;
	release(in);
	free_names(in);
	free(in->paths);
	free(in->walked);
	free(in->unquoted);
	chaff_buf_free(&in->b);
	if (in->dirfd >= 0)
		close(in->dirfd);
	free(in->dir);
	ahead_free(in);
	free(in);
}

/* Where the message's own text starts: past an mbox envelope line. */
static const char *after_envelope(const char *data, size_t len)
{
	if (len < 5 || memcmp(data, "From ", 5) != 0)
		return data;
	const char *nl = memchr(data, '\n', len);
	return nl ? nl + 1 : data + len;
}

bool input_is_mail(const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)after_envelope(data, len);
	const unsigned char *end = (const unsigned char *)data + len, *q = p;
	/* a field name: printable ASCII but the colon; then the colon, which
	 * the old syntax lets white space precede */
	while (q < end && *q > ' ' && *q < 127 && *q != ':')
		q++;
	if (q == p)
		return false;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	return q < end && *q == ':';
}

bool input_is_blank(const char *data, size_t len)
{
	const char *end = data + len;
	for (const char *p = after_envelope(data, len); p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return false;
	return true;
}

const char *input_refusal(const char *data, size_t len)
{
	/* Nothing but white space (an empty file, nothing on stdin, an mbox's
	 * envelope line alone) is no message: a mistake to point out, not a
	 * message to learn. */
	if (input_is_blank(data, len))
		return "empty message";
	if (!input_is_mail(data, len))
		return "not a mail message (no header at its start)";
	return NULL;
}
