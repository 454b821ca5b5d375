/*
 * The only C in the library. `_lws_log` is C-variadic, which stable Rust cannot
 * define; the exported Rust symbol `_lws_log` tail-jumps here with its arguments
 * untouched. This file formats the message and hands the finished line back to Rust.
 */
#include <stdarg.h>
#include <stdio.h>

#define HIDDEN __attribute__((visibility("hidden")))

static int (*log_enabled)(int filter);
static void (*log_sink)(int filter, const char *line);

/* Called once by the Rust side (from an ELF constructor) to connect the two halves. */
HIDDEN void lws_rs_log_shim_install(int (*enabled)(int), void (*sink)(int, const char *))
{
	log_enabled = enabled;
	log_sink = sink;
}

HIDDEN void lws_rs_log_format(int filter, const char *format, ...)
{
	char line[1024];
	va_list ap;

	if (!format || !log_sink || (log_enabled && !log_enabled(filter)))
		return;
	va_start(ap, format);
	vsnprintf(line, sizeof(line), format, ap);
	va_end(ap);
	line[sizeof(line) - 1] = '\0';
	log_sink(filter, line);
}
