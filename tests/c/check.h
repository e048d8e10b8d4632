/*
 * check.h: the one test harness of the C unit tests.  Each tests/c/test_*.c
 * is a single program: CHECK() counts a pass or prints the failing line, and
 * check_summary() prints the closing "N passed, M failed" line that meson and
 * CI read, returning the exit status.
 */
#ifndef IROHDS_TEST_CHECK_H
#define IROHDS_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                    \
            printf(__VA_ARGS__);                                                           \
            printf("\n");                                                                  \
        }                                                                                  \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}

#endif
