/*
 * test_util: paths, config parsing, hex, the name check and fs helpers.
 *
 * Expected values are written out by hand from util.h's rules (not computed
 * with the code under test).  argv[1] (the testdata dir) is not needed here.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#include "util/util.h"



#define CHECK_STR(got, want) CHECK(!strcmp((got), (want)), "got \"%s\", want \"%s\"", (got), (want))

/* ------------------------------------------------------------- paths */

static void clear_env(void)
{
    unsetenv("IROHDS_HOME");
    unsetenv("XDG_DATA_HOME");
    unsetenv("XDG_RUNTIME_DIR");
}

static void test_paths(const char *tmp)
{
    irohds_paths p;
    clear_env();
    setenv("HOME", "/home/alice", 1);
    CHECK(irohds_paths_init(&p) == 0, "paths_init HOME");
    CHECK_STR(p.data_dir, "/home/alice/.local/share/irohds");
    CHECK_STR(p.store_dir, "/home/alice/.local/share/irohds/store");
    CHECK_STR(p.config_path, "/home/alice/.local/share/irohds/config.toml");
    CHECK_STR(p.key_path, "/home/alice/.local/share/irohds/node.key");
    CHECK_STR(p.staging_dir, "/home/alice/.local/share/irohds/staging");
    CHECK_STR(p.files_dir, "/home/alice/.local/share/irohds/files");
    CHECK_STR(p.log_path, "/home/alice/.local/share/irohds/daemon.log");
    CHECK_STR(p.run_dir, "/home/alice/.local/share/irohds/run");
    CHECK_STR(p.socket_path, "/home/alice/.local/share/irohds/run/daemon.sock");

    setenv("XDG_DATA_HOME", "/data/x", 1);
    CHECK(irohds_paths_init(&p) == 0, "paths_init XDG_DATA_HOME");
    CHECK_STR(p.data_dir, "/data/x/irohds");
    setenv("XDG_DATA_HOME", "", 1); /* empty counts as unset */
    CHECK(irohds_paths_init(&p) == 0, "paths_init empty XDG_DATA_HOME");
    CHECK_STR(p.data_dir, "/home/alice/.local/share/irohds");

    /* XDG_RUNTIME_DIR is used only when it exists. */
    setenv("XDG_RUNTIME_DIR", "/nonexistent-runtime-dir", 1);
    irohds_paths_init(&p);
    CHECK_STR(p.socket_path, "/home/alice/.local/share/irohds/run/daemon.sock");
    setenv("XDG_RUNTIME_DIR", tmp, 1);
    irohds_paths_init(&p);
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s/irohds/daemon.sock", tmp);
    CHECK_STR(p.socket_path, want);

    /* IROHDS_HOME wins over everything, socket goes to its run/. */
    setenv("IROHDS_HOME", "/srv/ih", 1);
    CHECK(irohds_paths_init(&p) == 0, "paths_init IROHDS_HOME");
    CHECK_STR(p.data_dir, "/srv/ih");
    CHECK_STR(p.store_dir, "/srv/ih/store");
    CHECK_STR(p.socket_path, "/srv/ih/run/daemon.sock");

    /* Too long for sun_path: /tmp/irohds-<uid>/<16 hex>.sock */
    char longhome[300];
    memset(longhome, 'a', sizeof longhome);
    longhome[0] = '/';
    longhome[150] = '\0';
    setenv("IROHDS_HOME", longhome, 1);
    CHECK(irohds_paths_init(&p) == 0, "paths_init long");
    char prefix[64];
    snprintf(prefix, sizeof prefix, "/tmp/irohds-%u/", (unsigned)getuid());
    CHECK(!strncmp(p.socket_path, prefix, strlen(prefix)), "fallback socket %s", p.socket_path);
    CHECK(strlen(p.socket_path) == strlen(prefix) + 16 + 5, "fallback name length %s", p.socket_path);
    CHECK(!strcmp(p.socket_path + strlen(p.socket_path) - 5, ".sock"), "suffix %s", p.socket_path);
    char first[IROHDS_SOCK_PATH_MAX];
    snprintf(first, sizeof first, "%s", p.socket_path);
    longhome[149] = 'b'; /* a different long home gets a different socket */
    setenv("IROHDS_HOME", longhome, 1);
    irohds_paths_init(&p);
    CHECK(strcmp(first, p.socket_path) != 0, "two long homes share %s", first);

    /* create_dirs makes everything, mode 0700 */
    char home[PATH_MAX];
    snprintf(home, sizeof home, "%s/h/deep", tmp);
    setenv("IROHDS_HOME", home, 1);
    irohds_paths_init(&p);
    CHECK(irohds_paths_create_dirs(&p) == 0, "create_dirs");
    struct stat st;
    CHECK(stat(p.store_dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
          "store dir mode %o", st.st_mode & 0777);
    CHECK(stat(p.run_dir, &st) == 0 && S_ISDIR(st.st_mode), "run dir");
    CHECK(stat(p.files_dir, &st) == 0 && stat(p.staging_dir, &st) == 0, "files/staging dirs");
    clear_env();
}

/* ------------------------------------------------------------ config */

static int parse(irohds_config *c, const char *text, char *err)
{
    irohds_config_defaults(c);
    return irohds_config_parse(c, text, strlen(text), err, 200);
}

static void test_config_good(void)
{
    irohds_config c;
    char err[200];
    irohds_config_defaults(&c);
    CHECK(c.size_limit == 10737418240ull, "default size %llu", (unsigned long long)c.size_limit);
    CHECK(c.cheap_warning_seconds == 15.0 && c.sync && c.log_level == IROHDS_LOG_INFO,
          "defaults");
    CHECK_STR(c.listen, "0.0.0.0:4433");
    CHECK(c.mdns && c.dht && !c.dht_bootstrap_set && c.n_dht_bootstrap == 0,
          "discovery on by default, public DHT routers");
    CHECK_STR(c.dht_listen, "0.0.0.0:0");

    const char *full =
        "# irohds config\n"
        "size_limit = \"10GiB\"   # ten gibibytes\n"
        "cheap_warning_seconds = 2.5\n"
        "sync = false\n"
        "log_level = 'debug'\n"
        "\n"
        "[network]\n"
        "listen = \"[::]:4919\"\n"
        "bootstrap_peers = [\n"
        "  \"node1.example.org:4919\",  # first\n"
        "  'node2.example.org:4919',\n"
        "]\n"
        "trusted = [\"ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\"]\n"
        "[other]\n"
        "size_limit = \"not for us\"\n";
    CHECK(parse(&c, full, err) == 0, "full: %s", err);
    CHECK(c.size_limit == 10737418240ull, "10GiB -> %llu", (unsigned long long)c.size_limit);
    CHECK(c.cheap_warning_seconds == 2.5, "cheap %g", c.cheap_warning_seconds);
    CHECK(!c.sync, "sync false");
    CHECK(c.log_level == IROHDS_LOG_DEBUG, "log level %d", c.log_level);
    CHECK_STR(c.listen, "[::]:4919");
    CHECK(c.n_bootstrap == 2, "n_bootstrap %u", c.n_bootstrap);
    CHECK_STR(c.bootstrap_peers[0], "node1.example.org:4919");
    CHECK_STR(c.bootstrap_peers[1], "node2.example.org:4919");
    CHECK(c.n_trusted == 1, "n_trusted %u", c.n_trusted);
    CHECK_STR(c.trusted[0], "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");

    /* discovery keys, at top level or under [network] */
    irohds_config d;
    irohds_config_defaults(&d);
    const char *disc = "mdns = false\n[network]\ndht_listen = \"127.0.0.1:6881\"\n"
                       "dht_bootstrap = []\n";
    CHECK(parse(&d, disc, err) == 0, "discovery: %s", err);
    CHECK(!d.mdns && d.dht && d.dht_bootstrap_set && d.n_dht_bootstrap == 0,
          "mdns off, DHT with no bootstrap routers (a private DHT)");
    CHECK_STR(d.dht_listen, "127.0.0.1:6881");
    irohds_config_defaults(&d);
    CHECK(parse(&d, "dht = false\ndht_bootstrap = [\"127.0.0.1:7000\", \"10.0.0.1:7001\"]\n",
                err) == 0 && !d.dht && d.n_dht_bootstrap == 2,
          "dht off, two routers: %s", err);
    CHECK_STR(d.dht_bootstrap[1], "10.0.0.1:7001");
    irohds_config_defaults(&d);
    CHECK(parse(&d, "mdns = 1\n", err) == -EINVAL && strstr(err, "mdns must be true or false"),
          "mdns must be a bool: %s", err);

    static const struct {
        const char *text;
        uint64_t want;
    } sizes[] = {
        {"size_limit = \"500MB\"", 500000000ull},
        {"size_limit = \"500 MiB\"", 524288000ull},
        {"size_limit = \"1.5GiB\"", 1610612736ull},
        {"size_limit = \"2k\"", 2048ull},
        {"size_limit = \"7\"", 7ull},
        {"size_limit = \"3b\"", 3ull},
        {"size_limit = \"1TB\"", 1000000000000ull},
        {"size_limit = \"1tib\"", 1099511627776ull},
        {"size_limit = 4096", 4096ull},
        {"size_limit = 0", 0ull},
        {"size_limit = 1_000_000", 1000000ull},
        {"size_limit = 0x100", 256ull},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int rc = parse(&c, sizes[i].text, err);
        CHECK(rc == 0 && c.size_limit == sizes[i].want, "%s -> rc %d %llu want %llu (%s)",
              sizes[i].text, rc, (unsigned long long)c.size_limit,
              (unsigned long long)sizes[i].want, err);
    }

    /* top-level network keys, dotted keys, inline tables, escapes */
    CHECK(parse(&c, "listen = \"a\\tb\\u00e9\\\"\\\\\"\n", err) == 0, "escapes: %s", err);
    CHECK_STR(c.listen, "a\tb\xc3\xa9\"\\");
    CHECK(parse(&c, "network.listen = 'C:\\path'", err) == 0, "dotted: %s", err);
    CHECK_STR(c.listen, "C:\\path");
    CHECK(parse(&c, "network = { listen = \"x:1\", trusted = [] }\n", err) == 0, "inline: %s", err);
    CHECK_STR(c.listen, "x:1");
    CHECK(parse(&c, "[ network ]\n\"listen\" = \"\"\"\nmulti\\\n   line\"\"\"", err) == 0,
          "multiline: %s", err);
    CHECK_STR(c.listen, "multiline");
    CHECK(parse(&c, "listen = '''\nraw \\n ''text'''''", err) == 0, "multiline literal: %s", err);
    CHECK_STR(c.listen, "raw \\n ''text''");
    CHECK(parse(&c, "cheap_warning_seconds = 3\r\nsync = true\r\n", err) == 0 &&
              c.cheap_warning_seconds == 3.0 && c.sync,
          "crlf / int seconds: %s", err);
    CHECK(parse(&c, "cheap_warning_seconds = 1e1", err) == 0 && c.cheap_warning_seconds == 10.0,
          "exponent: %s", err);
    CHECK(parse(&c, "log_level = \"WARN\"", err) == 0 && c.log_level == IROHDS_LOG_WARN, "WARN");

    /* unknown keys of every type are parsed and ignored */
    const char *unknown = "future = { a = [1, [2.5, 'x'], {b = true}], c = -inf }\n"
                          "[[servers]]\nname = 'a'\n[[servers]]\nname = 'b'\n"
                          "[network.extra]\nlisten = 'not ours'\n"
                          "[network]\nsomething_new = 0o17\n";
    CHECK(parse(&c, unknown, err) == 0, "unknown keys: %s", err);
    CHECK_STR(c.listen, "0.0.0.0:4433");
    CHECK(parse(&c, "", err) == 0 && parse(&c, "\n# only a comment", err) == 0, "empty");
}

/* [namespace.<ns>] trusted = [...]: producers trusted in one namespace */
static void test_config_ns_trust(void)
{
    irohds_config c;
    char err[200];
    const char *a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *text =
        "trusted = [\"1111111111111111111111111111111111111111111111111111111111111111\"]\n"
        "[namespace.lab]\n"
        "trusted = [\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\n"
        "           \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"]\n"
        "[namespace.\"my.lab\"]\n"
        "trusted = [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n"
        "[namespace.empty]\n"
        "trusted = []\n"
        "[namespace.other]\n"
        "size_limit = 'not a trust key: ignored'\n";
    CHECK(parse(&c, text, err) == 0, "ns trust: %s", err);
    CHECK(c.n_trusted == 1 && c.n_ns_trusted == 3, "n_trusted %u n_ns_trusted %u", c.n_trusted,
          c.n_ns_trusted);
    CHECK_STR(c.ns_trusted[0].ns, "lab");
    CHECK_STR(c.ns_trusted[0].id, a); /* canonical lower case */
    CHECK_STR(c.ns_trusted[1].ns, "lab");
    CHECK_STR(c.ns_trusted[2].ns, "my.lab");
    CHECK_STR(c.ns_trusted[2].id, a);
    CHECK(c.size_limit == 10ull << 30, "[namespace.other] size_limit is not the top-level one");

    /* dotted and inline spellings name the same thing */
    CHECK(parse(&c, "namespace.x.trusted = ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']",
                err) == 0 && c.n_ns_trusted == 1 && !strcmp(c.ns_trusted[0].ns, "x"),
          "dotted: %s", err);
    CHECK(parse(&c, "namespace = { y = { trusted = ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'] } }",
                err) == 0 && c.n_ns_trusted == 1 && !strcmp(c.ns_trusted[0].ns, "y"),
          "inline: %s", err);

    static const struct {
        const char *text;
        const char *err;
    } bad[] = {
        {"[namespace.lab]\ntrusted = 'x'", "line 2: namespace.lab.trusted must be an array of strings"},
        {"[namespace.lab]\ntrusted = ['00']", "line 2: namespace.lab.trusted entry 1 is not a 64-hex-digit node id"},
        {"[namespace.lab]\ntrusted = ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']\n"
         "[namespace.lab]\ntrusted = ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']",
         "line 4: namespace.lab.trusted is set twice"},
        {"[namespace.\"\"]\ntrusted = []", "line 2: namespace name must be 1 to 127 bytes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(&c, bad[i].text, err);
        CHECK(rc == -EINVAL && !strncmp(err, bad[i].err, strlen(bad[i].err)),
              "ns bad #%zu: rc %d err \"%s\", want prefix \"%s\"", i, rc, err, bad[i].err);
    }
    /* a namespace name over 127 bytes */
    char big[64 * 1024];
    snprintf(big, sizeof big, "[namespace.%0200d]\ntrusted = []", 0);
    CHECK(parse(&c, big, err) == -EINVAL && strstr(err, "1 to 127 bytes"), "long ns: %s", err);
    /* at most IROHDS_MAX_NS_TRUSTED pairs in all */
    size_t off = 0;
    for (int t = 0; t < 5; t++) {
        off += (size_t)snprintf(big + off, sizeof big - off, "[namespace.n%d]\ntrusted = [", t);
        for (int i = 0; i < 60; i++)
            off += (size_t)snprintf(big + off, sizeof big - off, "'%064d',", i);
        off += (size_t)snprintf(big + off, sizeof big - off, "]\n");
    }
    CHECK(parse(&c, big, err) == -EINVAL && strstr(err, "line 10: more than 256"), "too many: %s", err);
}

static void test_config_bad(void)
{
    static const struct {
        const char *text;
        const char *err;
    } bad[] = {
        {"size_limit = \"10 furlongs\"", "line 1: size_limit \"10 furlongs\" is not a size"},
        {"\n\nsize_limit = -1", "line 3: size_limit cannot be negative"},
        {"size_limit = \"99999999999TiB\"", "line 1: size_limit \"99999999999TiB\" is too large"},
        {"size_limit = true", "line 1: size_limit must be"},
        {"sync = \"yes\"", "line 1: sync must be true or false"},
        {"log_level = \"verbose\"", "line 1: log_level must be"},
        {"cheap_warning_seconds = -1", "line 1: cheap_warning_seconds must be a number >= 0"},
        {"cheap_warning_seconds = nan", "line 1: cheap_warning_seconds must be a number >= 0"},
        {"sync = true\nsync = false", "line 2: sync is set twice"},
        {"listen = 'a'\n[network]\nlisten = 'b'", "line 3: network.listen is set twice"},
        {"listen = \"unterminated", "line 1: unterminated string"},
        {"a = 1\nlisten = \"x\ny\"", "line 2: newline in a single-line string"},
        {"listen = \"\"\"never closed\n\n", "line 1: unterminated string"},
        {"listen = \"bad \\q escape\"", "line 1: invalid escape '\\q' in string"},
        {"listen = \"\\ud800\"", "line 1: \\u escape is not a Unicode scalar value"},
        {"listen = \"\\u12\"", "line 1: \\u needs 4 hex digits"},
        {"listen = \"nul \\u0000 inside\"", "line 1: NUL character in a string"},
        {"listen =", "line 1: missing value"},
        {"listen = # nothing", "line 1: missing value"},
        {"= 5", "line 1: invalid key character '='"},
        {"listen \"x\"", "line 1: expected '=' after key"},
        {"x = 1 2", "line 1: unexpected '2' after value"},
        {"x = 01", "line 1: leading zero in '01'"},
        {"x = 1__0", "line 1: invalid number '1__0'"},
        {"x = 1.", "line 1: invalid number '1.'"},
        {"x = 0xZZ", "line 1: invalid number '0xZZ'"},
        {"x = 99999999999999999999", "line 1: integer out of range"},
        {"x = 1979-05-27", "line 1: dates and times are not supported"},
        {"x = yes", "line 1: invalid value starting with 'y'"},
        {"x = truely", "line 1: invalid value"},
        {"x = [1, 2", "line 1: unterminated array"},
        {"x = [\n1,\n2\n3]", "line 4: expected ',' or ']' in array"},
        {"x = {a = 1 b = 2}", "line 1: expected ',' or '}' in inline table"},
        {"[network\nlisten = 'x'", "line 1: expected ']' after table name"},
        {"[network] junk", "line 1: unexpected 'j' after value"},
        {"[[a]\n", "line 1: expected ']]' after array table name"},
        {"trusted = \"abc\"", "line 1: trusted must be an array of strings"},
        {"trusted = [1, 2]", "line 1: trusted must be an array of strings"},
        {"trusted = [\"00\"]", "line 1: trusted entry 1 is not a 64-hex-digit node id"},
        {"bootstrap_peers = [\n\"a\",\n\"b\"] \nlisten = 5", "line 4: listen must be a string"},
        {"x = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
         "line 1: values nested too deeply"},
        {"x = 1\n\x01", "line 2: invalid key character '\x01'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        irohds_config c;
        char err[200] = "";
        int rc = parse(&c, bad[i].text, err);
        CHECK(rc == -EINVAL && !strncmp(err, bad[i].err, strlen(bad[i].err)),
              "bad #%zu: rc %d err \"%s\", want prefix \"%s\"", i, rc, err, bad[i].err);
    }
    /* NUL bytes inside the text (len counts them) */
    irohds_config c;
    char err[200];
    irohds_config_defaults(&c);
    CHECK(irohds_config_parse(&c, "a = 1\nb = \0", 11, err, sizeof err) == -EINVAL &&
              !strcmp(err, "line 2: NUL byte in file"),
          "NUL: %s", err);
    /* too many trusted */
    char big[100 * 72 + 32] = "trusted = [";
    for (int i = 0; i < 65; i++)
        strcat(big, "\"0000000000000000000000000000000000000000000000000000000000000000\",");
    strcat(big, "]");
    CHECK(parse(&c, big, err) == -EINVAL && strstr(err, "65 entries"), "65 trusted: %s", err);
}

static void test_config_load(const char *tmp)
{
    irohds_config c;
    char err[300], path[PATH_MAX];
    irohds_config_defaults(&c);
    snprintf(path, sizeof path, "%s/absent.toml", tmp);
    CHECK(irohds_config_load(&c, path, err, sizeof err) == 0 && c.size_limit == 10ull << 30,
          "absent file is defaults");
    snprintf(path, sizeof path, "%s/c.toml", tmp);
    FILE *f = fopen(path, "w");
    fputs("size_limit = \"1GB\"\n[network]\nlisten = 1\n", f);
    fclose(f);
    CHECK(irohds_config_load(&c, path, err, sizeof err) == -EINVAL &&
              strstr(err, "line 3: listen must be a string") && strstr(err, path),
          "load error: %s", err);
}

/* -------------------------------------------------------- hex and names */

static void test_hex(void)
{
    uint8_t in[4] = {0x00, 0xab, 0x10, 0xff}, out[4];
    char s[9];
    irohds_hex_encode(in, 4, s);
    CHECK_STR(s, "00ab10ff");
    CHECK(irohds_hex_decode("00AB10fF", out, 4) == 0 && !memcmp(in, out, 4), "decode");
    CHECK(irohds_hex_decode("00ab10f", out, 4) == -EINVAL, "short");
    CHECK(irohds_hex_decode("00ab10ff00", out, 4) == -EINVAL, "long");
    CHECK(irohds_hex_decode("00ab1g00", out, 4) == -EINVAL, "bad digit");
}

static void test_names(void)
{
    static const char *good[] = {"a", "a.txt", "dir/sub/file.parquet", "..a", "a..", ".hidden",
                                 "a b", "sdss/26/3586-55181.parquet", "\xc3\xa9t\xc3\xa9"};
    static const char *badn[] = {"", "..", ".", "a/../b", "/etc/passwd", "a//b", "./a",
                                 "a/.", "a/", "../x", "a/..", "x\ny", "tab\there", "del\x7f"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(irohds_name_is_safe(good[i]), "should be safe: \"%s\"", good[i]);
    for (size_t i = 0; i < sizeof badn / sizeof badn[0]; i++)
        CHECK(!irohds_name_is_safe(badn[i]), "should be unsafe: \"%s\"", badn[i]);
    char name[IROHDS_NAME_MAX + 8];
    /* 1023 bytes made of 4 components of 255 and one of 3: fits exactly */
    memset(name, 'x', sizeof name);
    for (int i = 255; i < 1023; i += 256)
        name[i] = '/';
    name[1023] = '\0';
    CHECK(irohds_name_is_safe(name), "1023-byte name");
    name[1023] = 'x';
    name[1024] = '\0';
    CHECK(!irohds_name_is_safe(name), "1024-byte name");
    memset(name, 'y', 256);
    name[256] = '\0';
    CHECK(!irohds_name_is_safe(name), "256-byte component");
    name[255] = '\0';
    CHECK(irohds_name_is_safe(name), "255-byte component");
}

/* ---------------------------------------------------------------- fs */

static void test_fs(const char *tmp)
{
    char dir[PATH_MAX], file[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/m/n/o", tmp);
    CHECK(irohds_mkdirs(dir, 0700) == 0, "mkdirs");
    CHECK(irohds_mkdirs(dir, 0700) == 0, "mkdirs again");
    snprintf(file, sizeof file, "%s/f", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(irohds_write_all(fd, "hello", 5) == 0, "write_all");
    close(fd);
    char *buf = NULL;
    size_t len = 0;
    CHECK(irohds_read_file(file, 100, &buf, &len) == 0 && len == 5 && !strcmp(buf, "hello"),
          "read_file");
    free(buf);
    CHECK(irohds_read_file(file, 4, &buf, &len) == -EFBIG, "read_file max");
    CHECK(irohds_mkdirs(file, 0700) == -ENOTDIR || irohds_mkdirs(file, 0700) == -EEXIST,
          "mkdirs over a file");
    CHECK(irohds_fsync_dir(dir) == 0, "fsync_dir");
    CHECK(irohds_fsync_dir("/nonexistent/x") == -ENOENT, "fsync_dir missing");
    int64_t now = irohds_now_us();
    CHECK(now > 1600000000ll * 1000000 && now < 4000000000ll * 1000000, "now_us %lld",
          (long long)now);
    uint64_t a = irohds_monotonic_ns(), b = irohds_monotonic_ns();
    CHECK(b >= a, "monotonic");
}

static void test_log(const char *tmp)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/log", tmp);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    irohds_log_set_fd(fd);
    irohds_log_set_level(IROHDS_LOG_WARN);
    IROHDS_INFO("hidden %d", 1);
    IROHDS_WARN("shown %d", 2);
    IROHDS_ERROR("also %s", "shown");
    irohds_log_set_fd(2);
    close(fd);
    char *buf;
    size_t len;
    CHECK(irohds_read_file(path, 4096, &buf, &len) == 0, "read log");
    CHECK(!strstr(buf, "hidden"), "info filtered");
    CHECK(strstr(buf, " WARN ") && strstr(buf, "shown 2\n"), "warn line: %s", buf);
    CHECK(strstr(buf, " ERROR ") && strstr(buf, "also shown\n"), "error line");
    int lines = 0;
    for (char *q = buf; *q; q++)
        lines += *q == '\n';
    CHECK(lines == 2, "%d lines", lines);
    free(buf);
}

/* rmtree removes a nested tree, and a symlink inside it is removed, never
 * followed: the dir it points to (outside the tree) keeps its file. */
static void test_rmtree(const char *tmp)
{
    char tree[512], path[600], outside[512], keep[600];
    snprintf(tree, sizeof tree, "%s/tree", tmp);
    snprintf(outside, sizeof outside, "%s/outside", tmp);
    snprintf(keep, sizeof keep, "%s/keep.txt", outside);
    CHECK(irohds_mkdirs(tree, 0700) == 0 && irohds_mkdirs(outside, 0700) == 0, "mkdirs");
    int fd = open(keep, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0, "create outside file");
    if (fd >= 0)
        close(fd);
    snprintf(path, sizeof path, "%s/a/b/c", tree);
    CHECK(irohds_mkdirs(path, 0700) == 0, "nested dirs");
    snprintf(path, sizeof path, "%s/a/b/c/f", tree);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0)
        close(fd);
    snprintf(path, sizeof path, "%s/a/link", tree);
    CHECK(symlink(outside, path) == 0, "symlink out of the tree");
    CHECK(irohds_rmtree_at(AT_FDCWD, tree) == 0, "rmtree");
    struct stat st;
    CHECK(stat(tree, &st) < 0 && errno == ENOENT, "tree gone");
    CHECK(stat(keep, &st) == 0, "file behind the symlink kept");
    CHECK(irohds_rmtree_at(AT_FDCWD, tree) == 0, "rmtree of a missing tree is 0");
}

static void test_jbuf(void)
{
    irohds_jbuf b = {0};
    irohds_jbuf_puts(&b, "{\"s\": ");
    irohds_jbuf_str(&b, "a\"b\\c\n\x01");
    irohds_jbuf_puts(&b, ", \"h\": ");
    const uint8_t bytes[] = {0x00, 0xab, 0xff};
    irohds_jbuf_hex(&b, bytes, 3);
    irohds_jbuf_puts(&b, ", \"n\": [");
    irohds_jbuf_num(&b, 1.5);
    irohds_jbuf_puts(&b, ", ");
    irohds_jbuf_num(&b, 0.0 / 0.0);
    irohds_jbuf_puts(&b, ", ");
    irohds_jbuf_num(&b, 1.0 / 0.0);
    irohds_jbuf_puts(&b, "]}");
    const char *want = "{\"s\": \"a\\\"b\\\\c\\u000a\\u0001\", \"h\": \"00abff\", "
                       "\"n\": [1.5, null, null]}";
    CHECK(b.p && !b.failed && strcmp(b.p, want) == 0, "jbuf text: %s", b.p ? b.p : "(null)");
    CHECK(b.len == strlen(want), "jbuf len");
    /* grows past its first 1 KiB */
    for (int i = 0; i < 1000; i++)
        irohds_jbuf_printf(&b, "%04d", i);
    CHECK(b.p && b.len == strlen(want) + 4000 && !strncmp(b.p + b.len - 4, "0999", 4),
          "jbuf grows");
    free(b.p);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char tmp[] = "/tmp/test_util.XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_paths(tmp);
    test_config_good();
    test_config_ns_trust();
    test_config_bad();
    test_config_load(tmp);
    test_rmtree(tmp);
    test_hex();
    test_names();
    test_fs(tmp);
    test_log(tmp);
    test_jbuf();
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0)
        printf("warning: could not remove %s\n", tmp);
    return check_summary();
}
