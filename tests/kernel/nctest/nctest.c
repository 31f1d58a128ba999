// SPDX-License-Identifier: GPL-2.0
/*
 * nctest: makes a Debian kernel print what the netconsole tests need.
 * Debian builds without CONFIG_LKDTM, so this tiny module stands in for it.
 * The failure is chosen on load:  insmod nctest.ko scenario=NAME [lines=N]
 *
 *   oops   NULL-pointer write (an Oops; a panic with panic_on_oops=1)
 *   bug    BUG()
 *   warn   one WARN()
 *   warn3  three WARN_ON()s in a row
 *   panic  panic()
 *   long   records near and over 1000 bytes: plain cut lines, multi-line
 *          records, UTF-8 cut mid-sequence, escape-heavy (multi-KiB in
 *          extended mode) and a merged pr_cont line
 *   burst  N short lines back to back (default 5000)
 *
 * Every text is deterministic so the tests can predict it.
 */
#include <linux/bug.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>

static char *scenario = "none";
module_param(scenario, charp, 0444);
MODULE_PARM_DESC(scenario, "oops|bug|warn|warn3|panic|long|burst|none");

static int lines = 5000;
module_param(lines, int, 0444);
MODULE_PARM_DESC(lines, "number of lines for scenario=burst");

/* noinline keeps the function names visible in the stack traces. */
static noinline void nctest_null_deref(void)
{
	volatile int *p = NULL;

	pr_info("nctest: writing to a NULL pointer\n");
	*p = 42;	/* the kernel builds with -fno-delete-null-pointer-checks; SYM:oops */
}

static noinline void nctest_bug(void)
{
	pr_info("nctest: calling BUG()\n");
	BUG();	/* SYM:bug */
}

static noinline void nctest_warn(void)
{
	WARN(1, "nctest: WARN() with a message, value=%d\n", 42);	/* SYM:warn */
}

static noinline void nctest_warn3(void)
{
	int i;

	for (i = 0; i < 3; i++)
		WARN_ON(i >= 0);
}

/* Fill buf with "TAG: " followed by a repeating pattern, len bytes of text. */
static void fill(char *buf, size_t len, const char *tag, const char *unit)
{
	size_t n = scnprintf(buf, len + 1, "%s: ", tag);
	size_t ulen = strlen(unit);

	while (n + ulen <= len) {
		memcpy(buf + n, unit, ulen);
		n += ulen;
	}
	while (n < len)
		buf[n++] = '.';
	buf[n] = '\0';
}

/* Text lengths around the 1000-byte datagram limit: a plain line carries a
 * 15-byte "[    1.234567] " prefix, so 985 is the last that fits whole. */
static const int long_lengths[] = { 900, 984, 985, 986, 990, 1000, 1010, 1020 };

static noinline void nctest_long(void)
{
	char *buf = kmalloc(4096, GFP_KERNEL);
	char tag[32];
	int i;

	if (!buf)
		return;
	for (i = 0; i < ARRAY_SIZE(long_lengths); i++) {
		scnprintf(tag, sizeof(tag), "nctest long%d", long_lengths[i]);
		fill(buf, long_lengths[i], tag, "0123456789abcdefghij");
		pr_info("%s\n", buf);
	}
	/* one record of 8 lines, about 1070 bytes once each line has a prefix */
	pr_info("nctest multiline: line 1 of 8 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop\n"
		"nctest multiline: line 2 of 8 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop\n"
		"nctest multiline: line 3 of 8 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop\n"
		"nctest multiline: line 4 of 8 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop\n"
		"nctest multiline: line 5 of 8 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop\n"
		"nctest multiline: line 6 of 8 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop\n"
		"nctest multiline: line 7 of 8 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop\n"
		"nctest multiline: line 8 of 8 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop\n");
	/* 2-byte UTF-8 characters: the 1000-byte cut falls inside one */
	fill(buf, 1001, "nctest utf8", "\xc3\xa9");
	pr_info("%s\n", buf);
	/* escape-heavy: every byte but the tag is escaped as \xNN in extended
	 * mode (4x), about 1.9 KiB on the wire: fits 6.12's 2048-byte limit */
	fill(buf, 480, "nctest escapes", "\\\t\xc3\xa9");
	pr_info("%s\n", buf);
	/* the same, 3.8 KiB escaped: whole on 6.1, cut by 6.12 at 2 KiB */
	fill(buf, 960, "nctest escapes-big", "\\\t\xc3\xa9");
	pr_info("%s\n", buf);
	/* pieces that printk merges into one record */
	pr_info("nctest cont: a");
	pr_cont(" b");
	pr_cont(" c\n");
	kfree(buf);
}

static noinline void nctest_burst(void)
{
	int i;

	for (i = 0; i < lines; i++)
		pr_info("nctest burst %d/%d the quick brown fox jumps over the lazy dog\n",
			i + 1, lines);
}

struct nctest_case {
	const char *name;
	void (*fn)(void);
};

static noinline void nctest_panic(void)
{
	panic("nctest: panic() called on purpose");
}

/* scenario name -> action */
static const struct nctest_case cases[] = {
	{ "oops", nctest_null_deref },
	{ "bug", nctest_bug },
	{ "warn", nctest_warn },
	{ "warn3", nctest_warn3 },
	{ "panic", nctest_panic },
	{ "long", nctest_long },
	{ "burst", nctest_burst },
};

static int __init nctest_init(void)
{
	int i;

	pr_info("nctest: scenario=%s\n", scenario);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (strcmp(scenario, cases[i].name) == 0) {
			cases[i].fn();	/* SYM:call */
			pr_info("nctest: scenario %s done\n", scenario);
			return 0;
		}
	}
	if (strcmp(scenario, "none") != 0)
		pr_err("nctest: unknown scenario %s\n", scenario);
	return 0;
}

static void __exit nctest_exit(void)
{
}

module_init(nctest_init);
module_exit(nctest_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("netconsole test scenarios for syslogng-netconsole");
