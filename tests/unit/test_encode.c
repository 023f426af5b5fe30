/*
 * Unit tests of proxy/encode.c: the bytes of bulwark's own replies in RESP2
 * and RESP3, as Redis 7.0 writes them (networking.c addReply*).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "proxy/encode.h"

static struct evbuffer *out;

static int
setup(void **state)
{
    (void)state;
    out = evbuffer_new();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    evbuffer_free(out);
    return 0;
}

/* Take the output so far as a string. */
static const char *
take(void)
{
    static char buf[2048];
    size_t n = evbuffer_get_length(out);
    assert_true(n < sizeof(buf));
    evbuffer_remove(out, buf, n);
    buf[n] = '\0';
    return buf;
}

static void
test_scalars(void **state)
{
    (void)state;
    enc_int(out, 0);
    assert_string_equal(take(), ":0\r\n");
    enc_int(out, -9223372036854775807LL - 1);
    assert_string_equal(take(), ":-9223372036854775808\r\n");
    enc_int(out, 1234567890123LL);
    assert_string_equal(take(), ":1234567890123\r\n");
    enc_status(out, "OK");
    assert_string_equal(take(), "+OK\r\n");
    enc_bulk(out, "a\r\nb", 4);
    assert_string_equal(take(), "$4\r\na\r\nb\r\n");
    enc_bulk(out, "", 0);
    assert_string_equal(take(), "$0\r\n\r\n");
    enc_array_len(out, 3);
    assert_string_equal(take(), "*3\r\n");
}

static void
test_errors_are_one_line(void **state)
{
    (void)state;
    enc_error(out, "ERR bad %s", "x\r\ny");
    assert_string_equal(take(), "-ERR bad x  y\r\n");
    char big[3000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    enc_error(out, "%s", big);
    assert_int_equal(strlen(take()), 1 + 1023 + 2); /* cut, still one whole error */
}

static void
test_per_protocol(void **state)
{
    (void)state;
    enc_nil(out, 2);
    enc_nil(out, 3);
    assert_string_equal(take(), "$-1\r\n_\r\n");
    enc_map_len(out, 2, 3);
    enc_map_len(out, 3, 3);
    assert_string_equal(take(), "*6\r\n%3\r\n");
    enc_set_len(out, 2, 2);
    enc_set_len(out, 3, 2);
    assert_string_equal(take(), "*2\r\n~2\r\n");
    struct evbuffer *text = evbuffer_new();
    evbuffer_add(text, "a:1\r\n", 5);
    enc_verbatim(out, 3, text);
    assert_int_equal(evbuffer_get_length(text), 0);
    assert_string_equal(take(), "=9\r\ntxt:a:1\r\n\r\n");
    evbuffer_add(text, "a:1\r\n", 5);
    enc_verbatim(out, 2, text);
    assert_string_equal(take(), "$5\r\na:1\r\n\r\n");
    evbuffer_free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scalars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_are_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_protocol, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
