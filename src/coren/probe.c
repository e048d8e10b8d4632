/*
 * probe.c: measure this machine (coren.h), the only part of coren that does
 * I/O.  Budget: well under a second in all, so the daemon can afford it at
 * its first start; then it is cached (cache.c) and reused for 30 days.
 *
 *   CPU     one thread, ~60 ms: a loop of dependent integer (xorshift,
 *           multiply) and floating-point (multiply, add) steps.  Each step
 *           needs the one before, so no compiler can vectorize or fold it
 *           away and the speed it shows is that of one core running serial
 *           code, like an interpreter, whichever compiler built it.  Timed
 *           in slices; the best slice counts (the others lost time to
 *           preemption, not to the machine being slow).  Built with -O2
 *           whatever the build type (meson.build): an -O0 build must not
 *           make the machine look three times slower.
 *   memory  memcpy between two buffers each a quarter larger than the
 *           last-level cache (at least 16 MiB, at most 64 MiB or 1/16 of
 *           RAM), best of three; faulted in beforehand so page faults are
 *           not counted.
 *   disk    a temporary file beside the cache, unlinked at once so nothing
 *           is left even if we are killed: 4 MiB writes each followed by
 *           fdatasync, up to 64 MiB or 150 ms; then the pages are dropped
 *           (posix_fadvise) and read back, up to 100 ms.  Where the page
 *           cache cannot be dropped (tmpfs) the read figure is memory speed.
 *   facts   cores (online, and usable under our affinity mask), RAM, CPU
 *           model (/proc/cpuinfo), GPUs (device nodes and DRM PCI vendors).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coren/coren.h"
#include "util/util.h"

/* The first cap-1 bytes of a file, NUL-terminated.  For /proc and /sys,
 * whose files report sizes (0, 4096) that have nothing to do with what a
 * read returns, so irohds_read_file's size checks do not fit them. */
static int read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    return 0;
}

/* ------------------------------------------------------------------ CPU */

#define CPU_OPS_PER_ITER 14 /* operations in one kernel iteration, counted below */
#define CPU_SLICE_ITERS 65536
#define CPU_BUDGET_NS 60000000ull

static volatile uint64_t sink_u;
static volatile double sink_d;

/*
 * Two dependent chains, integer (xorshift and a multiply: 9 cycles of
 * latency on current cores) and floating point (multiply, add: 6-8), and
 * nothing a compiler may do differently: no branch (gcc and clang choose
 * differently between a jump and a conditional move, which once made one
 * machine score 2.3x apart), no int-to-double conversion (its false
 * register dependency is handled differently), no vectorizable loop.  The
 * integer chain is the longer, so the loop runs at its latency, not at
 * however well the front end digests one compiler's instruction mix; the
 * score is mostly clock speed, which is what single-threaded interpreted
 * code mostly follows.
 */
static void cpu_kernel(uint64_t iters, uint64_t seed)
{
    uint64_t x = seed | 1, acc = 0;
    double f = 1.0;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13; /* 7: xorshift64 and an odd multiply, the integer chain */
        x ^= x >> 7;
        x ^= x << 17;
        x *= 0x2545f4914f6cdd1dull;
        acc += x;                                          /* 1 */
        uint64_t bits = 0x3ff0000000000000ull | (x >> 12); /* 2: a double in [1, 2) */
        double d;
        memcpy(&d, &bits, sizeof d);   /* 1 */
        f = f * 0.9999999 + (d - 1.0); /* 3: the floating-point chain */
    }
    sink_u = acc;
    sink_d = f;
}

static double measure_cpu(void)
{
    uint64_t start = irohds_monotonic_ns(), seed = sink_u ^ 0x9e3779b97f4a7c15ull;
    double best = 0;
    while (irohds_monotonic_ns() - start < CPU_BUDGET_NS) {
        uint64_t t0 = irohds_monotonic_ns();
        cpu_kernel(CPU_SLICE_ITERS, seed++);
        uint64_t dt = irohds_monotonic_ns() - t0;
        double rate = (double)CPU_SLICE_ITERS * CPU_OPS_PER_ITER / ((double)(dt ? dt : 1) / 1e9);
        if (rate > best)
            best = rate;
    }
    return best;
}

/* --------------------------------------------------------------- memory */

#define MEM_MIN (16u << 20)
#define MEM_MAX (64u << 20)

/* "32768K" / "32M" / "1024" -> bytes */
static uint64_t parse_cache_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'K')
        v <<= 10;
    else if (*end == 'M')
        v <<= 20;
    return v;
}

/* The size of the highest cache level cpu0 reports (0 if none). */
static uint64_t llc_bytes(void)
{
    uint64_t best = 0;
    int best_level = 0;
    for (int i = 0; i < 8; i++) {
        char path[128], level[32], size[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        if (read_small(path, level, sizeof level) != 0)
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (read_small(path, size, sizeof size) == 0 && atoi(level) >= best_level) {
            best_level = atoi(level);
            best = parse_cache_size(size);
        }
    }
    return best;
}

/* Anonymous memory faulted in by the kernel in one go (MAP_POPULATE), far
 * cheaper than a fault per page from memset, which is most of the time
 * this phase would otherwise take on a VM. */
static char *populated(uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int measure_mem(uint64_t ram, double *bw)
{
    uint64_t size = llc_bytes() / 4 * 5;
    size = size < MEM_MIN ? MEM_MIN : size > MEM_MAX ? MEM_MAX : size;
    if (ram && size > ram / 16)
        size = ram / 16; /* a small machine: do not push it into swap */
    char *src = populated(size), *dst = populated(size);
    int rc = src && dst ? 0 : -ENOMEM;
    double best = 0;
    for (int round = 0; rc == 0 && round < 3; round++) {
        src[round] = (char)(round + 1); /* a different copy each time */
        uint64_t t0 = irohds_monotonic_ns();
        memcpy(dst, src, size);
        uint64_t dt = irohds_monotonic_ns() - t0;
        sink_u += (uint8_t)dst[round];
        double rate = (double)size / ((double)(dt ? dt : 1) / 1e9);
        if (rate > best)
            best = rate;
    }
    if (src)
        munmap(src, size);
    if (dst)
        munmap(dst, size);
    *bw = best;
    return rc;
}

/* ----------------------------------------------------------------- disk */

#define DISK_CHUNK (4u << 20)
#define DISK_MAX (64u << 20)
#define DISK_WRITE_NS 150000000ull
#define DISK_READ_NS 100000000ull

static uint64_t disk_write(int fd, char *buf, double *bw)
{
    uint64_t t0 = irohds_monotonic_ns(), done = 0;
    while (done < DISK_MAX && irohds_monotonic_ns() - t0 < DISK_WRITE_NS) {
        if (irohds_write_all(fd, buf, DISK_CHUNK) != 0 || fdatasync(fd) != 0)
            return 0;
        done += DISK_CHUNK;
    }
    *bw = (double)done / ((double)(irohds_monotonic_ns() - t0) / 1e9);
    return done;
}

static void disk_read(int fd, char *buf, uint64_t size, double *bw)
{
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    uint64_t t0 = irohds_monotonic_ns(), done = 0;
    while (done < size && irohds_monotonic_ns() - t0 < DISK_READ_NS) {
        ssize_t n = pread(fd, buf, DISK_CHUNK, (off_t)done);
        if (n <= 0)
            return;
        done += (uint64_t)n;
    }
    *bw = (double)done / ((double)(irohds_monotonic_ns() - t0) / 1e9);
}

/* Both figures stay 0 when the directory cannot take the file. */
static void measure_disk(const char *dir, double *write_bw, double *read_bw)
{
    char path[PATH_MAX];
    *write_bw = *read_bw = 0;
    if (snprintf(path, sizeof path, "%s/.coren-probe-XXXXXX", dir) >= (int)sizeof path)
        return;
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return;
    unlink(path);
    char *buf = malloc(DISK_CHUNK);
    if (buf) {
        /* Incompressible bytes, so a compressing filesystem shows its disk. */
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i + 8 <= DISK_CHUNK; i += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(buf + i, &x, 8);
        }
        uint64_t written = disk_write(fd, buf, write_bw);
        if (written)
            disk_read(fd, buf, written, read_bw);
        free(buf);
    }
    close(fd);
}

/* ---------------------------------------------------------------- facts */

/* Printable ASCII only, and no '"' or '\\': the model goes into the cache
 * file and into JSON as it is. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
            *s = '?';
}

/* The value of the first "key<blanks>: value" line of /proc/cpuinfo. */
static bool cpuinfo_value(const char *info, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key);
    for (const char *line = info; *line;) {
        const char *eol = strchrnul(line, '\n');
        const char *p = line + klen;
        if (strncmp(line, key, klen) == 0) {
            while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
            if (p < eol && *p == ':') {
                for (p++; p < eol && (*p == ' ' || *p == '\t'); p++)
                    ;
                if (p < eol) {
                    snprintf(out, len, "%.*s", (int)(eol - p), p);
                    return true;
                }
            }
        }
        line = *eol ? eol + 1 : eol;
    }
    return false;
}

static void read_cpu_model(char *out, size_t len)
{
    /* x86, then what ARM, MIPS and RISC-V kernels print instead. */
    static const char *keys[] = {"model name", "Hardware", "Model", "cpu model", "uarch"};
    /* The first CPU's block is at the start; 64 KiB holds it many times. */
    char *info = malloc(65536);
    snprintf(out, len, "unknown");
    if (info && read_small("/proc/cpuinfo", info, 65536) == 0) {
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            if (cpuinfo_value(info, keys[i], out, len))
                break;
    }
    free(info);
    sanitize(out);
}

static unsigned online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static unsigned usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return online_cores();
    int n = CPU_COUNT(&set);
    return n > 0 ? (unsigned)n : 1;
}

static void add_gpu(char *out, size_t len, const char *kind)
{
    if (strstr(out, kind))
        return;
    size_t used = strlen(out);
    snprintf(out + used, len - used, "%s%s", used ? "," : "", kind);
}

static bool exists_at(const char *root, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return access(path, F_OK) == 0;
}

/* card0, card1, ... (not the connectors card0-HDMI-A-1) */
static bool is_card(const char *name)
{
    if (strncmp(name, "card", 4) != 0 || !name[4])
        return false;
    for (const char *p = name + 4; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

static void drm_vendors(const char *root, char *out, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sys/class/drm", root);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char vendor[32];
        if (!is_card(e->d_name))
            continue;
        snprintf(path, sizeof path, "%s/sys/class/drm/%s/device/vendor", root, e->d_name);
        if (read_small(path, vendor, sizeof vendor) != 0)
            continue;
        unsigned long id = strtoul(vendor, NULL, 16);
        if (id == 0x10de)
            add_gpu(out, len, "nvidia");
        else if (id == 0x1002)
            add_gpu(out, len, "amd");
        else if (id == 0x8086)
            add_gpu(out, len, "intel");
        /* others (virtio, QXL, VMware, BMC consoles) are no GPUs */
    }
    closedir(d);
}

void irohds_coren_detect_gpu(const char *root, char *out, size_t len)
{
    out[0] = 0;
    if (exists_at(root, "dev/nvidia0") || exists_at(root, "dev/nvidiactl"))
        add_gpu(out, len, "nvidia");
    if (exists_at(root, "dev/kfd"))
        add_gpu(out, len, "amd");
    drm_vendors(root, out, len);
}

/* ---------------------------------------------------------------- probe */

int irohds_coren_probe_measure(irohds_coren_probe *p, const char *scratch_dir, int64_t now_us)
{
    uint64_t t0 = irohds_monotonic_ns();
    memset(p, 0, sizeof *p);
    read_cpu_model(p->cpu_model, sizeof p->cpu_model);
    p->cores_online = online_cores();
    p->cores_usable = usable_cores();
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    p->ram_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    irohds_coren_detect_gpu("/", p->gpu, sizeof p->gpu);
    p->cpu_ops = measure_cpu();
    int rc = measure_mem(p->ram_bytes, &p->mem_bw);
    if (rc)
        return rc;
    measure_disk(scratch_dir, &p->disk_write_bw, &p->disk_read_bw);
    p->figure = p->cpu_ops / IROHDS_COREN_REF_CPU_OPS;
    p->measured_us = now_us;
    p->probe_seconds = (double)(irohds_monotonic_ns() - t0) / 1e9;
    return 0;
}

/* Still good for this machine at now_us?  (A cache from the future is
 * not: the clock was wrong then or is now.) */
static bool still_valid(const irohds_coren_probe *p, int64_t now_us)
{
    char model[sizeof p->cpu_model];
    read_cpu_model(model, sizeof model);
    return p->measured_us <= now_us + 86400LL * 1000000 &&
           now_us - p->measured_us < IROHDS_COREN_PROBE_MAX_AGE_US &&
           strcmp(model, p->cpu_model) == 0 && p->cores_online == online_cores();
}

int irohds_coren_probe_get(irohds_coren_probe *p, const char *cache_path, int64_t now_us,
                           bool *measured)
{
    if (measured)
        *measured = false;
    if (irohds_coren_probe_load(p, cache_path) == 0 && still_valid(p, now_us))
        return 0;
    char dir[PATH_MAX];
    const char *slash = strrchr(cache_path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - cache_path), cache_path) >=
             (int)sizeof dir)
        return -ENAMETOOLONG;
    int rc = irohds_coren_probe_measure(p, dir[0] ? dir : "/", now_us);
    if (rc)
        return rc;
    if (measured)
        *measured = true;
    rc = irohds_coren_probe_save(p, cache_path);
    if (rc)
        IROHDS_WARN("coren: cannot save the machine probe to %s: %s", cache_path, strerror(-rc));
    return 0;
}
