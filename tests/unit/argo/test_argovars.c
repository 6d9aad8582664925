/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for argovars.c: the keyFormat variables Argo offers (argo.md §2.2), checked
 * against what Argo's controller computes for them.
 *
 * The expected values are written by hand from Argo's and Go's rules, never taken from
 * argovars.c's output:
 *   - workflow.creationTimestamp.<c>: Argo's util/strftime maps each letter to a Go layout and
 *     calls time.Format: B=January b=Jan m=01 A=Monday a=Mon d=02 H=15 I=03 M=04 S=05 Y=2006
 *     y=06 p=PM Z=MST z=-0700 L=.000. Go prints "MST" as the zone's name ("UTC" for a time
 *     parsed from "Z"), and for a fixed zone with no name (a parsed "+05:30") as -0700 does.
 *     ".s" is strconv.FormatInt(Unix()), the bare name and ".RFC3339" are time.RFC3339.
 *   - *.json: Go's encoding/json: map keys sorted bytewise, compact, the HTML characters
 *     < > & and U+2028/9 escaped, control bytes as \u00XX (since Go 1.22 \b and \f as short
 *     escapes), invalid UTF-8 as \ufffd, everything else (non-ASCII too) copied.
 *   - workflow.parameters.json: json.Marshal of Argo's []Parameter, fields in struct order
 *     (name, default, value, valueFrom, globalName, enum, description), omitempty.
 *   - the RFC 3339 round trip: a canonical timestamp parsed (base/clock.c, tested in
 *     tests/unit/base/test_clock.c) and formatted again is unchanged.
 *
 * Tests named test_bug_* check behaviour that is wrong today: they fail until argovars.c
 * or spec.c is fixed, and each says what Argo does and why.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "argo/argovars.h"
#include "base/clock.h"
#include "base/buf.h"
#include "argo/spec.h"
#include "argo/template.h"
#include "test.h"

/* ---- helpers ---- */

static const char *get(const struct af_vars *v, const char *name)
{
        const struct af_var *var = af_vars_get(v, name);

        return var ? var->value : NULL;
}

/* Checks one variable; on a mismatch, says which one. */
#define CHECK_VAR(vars, name, want)                                                             \
        do {                                                                                    \
                if (!CHECK_STR_EQ(get((vars), (name)), (want)))                                 \
                        fprintf(stderr, "    variable %s\n", (name));                           \
        } while (0)

/* Parses @yaml as a spec (template @tmpl, NULL for the entrypoint); false on failure. */
static bool parse_spec(const char *yaml, const char *tmpl, struct af_spec *spec)
{
        struct af_buf err;
        int r;

        af_buf_init(&err, 0);
        r = af_spec_parse(yaml, strlen(yaml), "test.yaml", tmpl, spec, &err);
        if (!CHECK_INT_EQ(r, 0))
                fprintf(stderr, "    %s\n", af_buf_str(&err));
        af_buf_done(&err);
        return r == 0;
}

/* af_json_quote(@in) must give exactly @want (with the quotes). */
static void expect_json(const char *in, const char *want)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_json_quote(&b, in), 0);
        if (!CHECK_STR_EQ(af_buf_str(&b), want))
                test_print_escaped("input", in, strlen(in));
        af_buf_done(&b);
}

/* ---- workflow.creationTimestamp ---- */

struct time_case {
        time_t t;
        int off;
        const char *rfc, *s;
        /* Y y m B b d A a H I M S p Z z L */
        const char *letters[16];
};

static const char time_letters[] = "YymBbdAaHIMSpZzL";

/* Worked out from the calendar and Go's layouts, one instant per row. */
static const struct time_case time_cases[] = {
        /* midnight: 12-hour clock says 12 AM */
        { 1795824000, 0, "2026-11-28T00:00:00Z", "1795824000",
          { "2026", "26", "11", "November", "Nov", "28", "Saturday", "Sat", "00", "12", "00",
            "00", "AM", "UTC", "+0000", ".000" } },
        /* noon: 12 PM */
        { 1795867200, 0, "2026-11-28T12:00:00Z", "1795867200",
          { "2026", "26", "11", "November", "Nov", "28", "Saturday", "Sat", "12", "12", "00",
            "00", "PM", "UTC", "+0000", ".000" } },
        /* the last second of a year */
        { 1798761599, 0, "2026-12-31T23:59:59Z", "1798761599",
          { "2026", "26", "12", "December", "Dec", "31", "Thursday", "Thu", "23", "11", "59",
            "59", "PM", "UTC", "+0000", ".000" } },
        /* a leap day, 1 PM: I=01 */
        { 1709211909, 0, "2024-02-29T13:05:09Z", "1709211909",
          { "2024", "24", "02", "February", "Feb", "29", "Thursday", "Thu", "13", "01", "05",
            "09", "PM", "UTC", "+0000", ".000" } },
        /* y=00 */
        { 946684800, 0, "2000-01-01T00:00:00Z", "946684800",
          { "2000", "00", "01", "January", "Jan", "01", "Saturday", "Sat", "00", "12", "00",
            "00", "AM", "UTC", "+0000", ".000" } },
        /* past 2038 */
        { 4102444799, 0, "2099-12-31T23:59:59Z", "4102444799",
          { "2099", "99", "12", "December", "Dec", "31", "Thursday", "Thu", "23", "11", "59",
            "59", "PM", "UTC", "+0000", ".000" } },
        /* the epoch */
        { 0, 0, "1970-01-01T00:00:00Z", "0",
          { "1970", "70", "01", "January", "Jan", "01", "Thursday", "Thu", "00", "12", "00",
            "00", "AM", "UTC", "+0000", ".000" } },
        /* argo.md §2.2's documented example date */
        { 1534986123, 0, "2018-08-23T01:02:03Z", "1534986123",
          { "2018", "18", "08", "August", "Aug", "23", "Thursday", "Thu", "01", "01", "02",
            "03", "AM", "UTC", "+0000", ".000" } },
        /* 04:00Z shown at +05:30: a fixed zone with no name, so Z prints like z */
        { 1795838400, 19800, "2026-11-28T09:30:00+05:30", "1795838400",
          { "2026", "26", "11", "November", "Nov", "28", "Saturday", "Sat", "09", "09", "30",
            "00", "AM", "+0530", "+0530", ".000" } },
        /* the same instant at -08:00 is the day before; .s does not move */
        { 1795838400, -28800, "2026-11-27T20:00:00-08:00", "1795838400",
          { "2026", "26", "11", "November", "Nov", "27", "Friday", "Fri", "20", "08", "00",
            "00", "PM", "-0800", "-0800", ".000" } },
        /* a negative offset with minutes */
        { 1772983799, -12600, "2026-03-08T11:59:59-03:30", "1772983799",
          { "2026", "26", "03", "March", "Mar", "08", "Sunday", "Sun", "11", "11", "59", "59",
            "AM", "-0330", "-0330", ".000" } },
        /* less than an hour west: the sign must survive a zero hour */
        { 1795838400, -1800, "2026-11-28T03:30:00-00:30", "1795838400",
          { "2026", "26", "11", "November", "Nov", "28", "Saturday", "Sat", "03", "03", "30",
            "00", "AM", "-0030", "-0030", ".000" } },
};

static void test_time_letters(void)
{
        for (size_t i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
                const struct time_case *c = &time_cases[i];
                struct af_vars v;

                af_vars_init(&v);
                if (!CHECK_INT_EQ(af_argo_vars_from_time(&v, c->t, c->off, "test"), 0))
                        continue;
                CHECK_VAR(&v, "workflow.creationTimestamp", c->rfc);
                CHECK_VAR(&v, "workflow.creationTimestamp.RFC3339", c->rfc);
                CHECK_VAR(&v, "workflow.creationTimestamp.s", c->s);
                for (size_t l = 0; l < 16; l++) {
                        char name[64];

                        snprintf(name, sizeof(name), "workflow.creationTimestamp.%c",
                                 time_letters[l]);
                        CHECK_VAR(&v, name, c->letters[l]);
                }
                af_vars_done(&v);
        }
}

/* Exactly Argo's set: 16 letters plus the bare name, .RFC3339 and .s; nothing else. */
static void test_time_variable_set(void)
{
        static const char *const not_argo[] = { "j", "e", "F", "T", "D", "u", "w", "k", "l",
                                                 "N", "P", "c", "x", "X", "%", "" };
        struct af_vars v;

        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_time(&v, 1795838400, 0, "--creation-timestamp"), 0);
        CHECK_INT_EQ(v.n, 19);
        for (size_t i = 0; i < v.n; i++) {
                CHECK(strncmp(v.v[i].name, "workflow.creationTimestamp", 26) == 0);
                CHECK_STR_EQ(v.v[i].source, "--creation-timestamp");
        }
        for (size_t i = 0; i < sizeof(not_argo) / sizeof(not_argo[0]); i++) {
                char name[64];

                snprintf(name, sizeof(name), "workflow.creationTimestamp.%s", not_argo[i]);
                if (!CHECK(get(&v, name) == NULL))
                        fprintf(stderr, "    %s should not exist\n", name);
        }
        af_vars_done(&v);
}

/* --var comes first and wins: from_time adds only what is missing. */
static void test_time_keeps_existing(void)
{
        struct af_vars v;

        af_vars_init(&v);
        CHECK_INT_EQ(af_vars_set(&v, "workflow.creationTimestamp.Y", "1999", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(&v, "workflow.creationTimestamp", "then", "--var", true), 0);
        CHECK_INT_EQ(af_argo_vars_from_time(&v, 1795838400, 0, "mount time"), 0);
        CHECK_VAR(&v, "workflow.creationTimestamp.Y", "1999");
        CHECK_VAR(&v, "workflow.creationTimestamp", "then");
        CHECK_STR_EQ(af_vars_get(&v, "workflow.creationTimestamp.Y")->source, "--var");
        CHECK_VAR(&v, "workflow.creationTimestamp.m", "11");
        CHECK_VAR(&v, "workflow.creationTimestamp.RFC3339", "2026-11-28T04:00:00Z");
        CHECK_STR_EQ(af_vars_get(&v, "workflow.creationTimestamp.m")->source, "mount time");
        CHECK_INT_EQ(v.n, 19);
        af_vars_done(&v);
}

/* A canonical timestamp goes through parse and from_time unchanged, as Argo's RFC3339. */
static void test_rfc3339_round_trip(void)
{
        static const char *const canon[] = {
                "2026-11-28T04:00:00Z",      "2024-02-29T13:05:09Z", "1970-01-01T00:00:00Z",
                "2026-11-28T09:30:00+05:30", "2026-11-27T20:00:00-08:00",
        };

        for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
                struct af_vars v;
                time_t t;
                int off;

                af_vars_init(&v);
                if (CHECK_INT_EQ(af_rfc3339_parse(canon[i], 0, &t, &off), 0) &&
                    CHECK_INT_EQ(af_argo_vars_from_time(&v, t, off, "x"), 0))
                        CHECK_VAR(&v, "workflow.creationTimestamp.RFC3339", canon[i]);
                af_vars_done(&v);
        }
        {
                /* "+00:00" is UTC to Go (the zero offset matches time.UTC): printed "Z" */
                struct af_vars v;
                time_t t;
                int off;

                af_vars_init(&v);
                CHECK_INT_EQ(af_rfc3339_parse("2026-11-28T04:00:00+00:00", 0, &t, &off), 0);
                CHECK_INT_EQ(af_argo_vars_from_time(&v, t, off, "x"), 0);
                CHECK_VAR(&v, "workflow.creationTimestamp", "2026-11-28T04:00:00Z");
                CHECK_VAR(&v, "workflow.creationTimestamp.Z", "UTC");
                af_vars_done(&v);
        }
}

/* ---- af_json_quote ---- */

static void test_json_quote(void)
{
        expect_json("", "\"\"");
        expect_json("plain-value_1.2", "\"plain-value_1.2\"");
        expect_json("a\"b", "\"a\\\"b\"");
        expect_json("a\\b", "\"a\\\\b\"");
        expect_json("x\ny\rz\tw", "\"x\\ny\\rz\\tw\"");
        expect_json("\x01", "\"\\u0001\"");
        expect_json("\x1f", "\"\\u001f\"");
        expect_json("\x0b", "\"\\u000b\"");
        expect_json("\x1b[0m", "\"\\u001b[0m\"");
        /* HTML-safe escaping is on in json.Marshal */
        expect_json("<a href='x'>&</a>", "\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\"");
        /* JavaScript line terminators */
        expect_json("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "\"a\\u2028b\\u2029c\"");
        /* valid UTF-8 is copied: 2-, 3- and 4-byte forms, and a near miss of U+2028 (U+2027) */
        expect_json("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82 \xe2\x80\xa7",
                    "\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82 \xe2\x80\xa7\"");
        /* DEL, slash and single quote are not escaped by Go */
        expect_json("\x7f/'", "\"\x7f/'\"");
}

static void test_json_quote_appends(void)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_buf_adds(&b, "k:"), 0);
        CHECK_INT_EQ(af_json_quote(&b, "v"), 0);
        CHECK_STR_EQ(af_buf_str(&b), "k:\"v\"");
        af_buf_done(&b);

        /* a cap that the quoted text does not fit: an error, not a crash or an overrun */
        af_buf_init(&b, 8);
        CHECK(af_json_quote(&b, "0123456789") < 0);
        CHECK(b.len <= 8);
        af_buf_done(&b);
}

/*
 * BUG (Go >= 1.22, i.e. Argo >= 3.6): encoding/json writes \b and \f as the short escapes
 * "\b" and "\f" (Go 1.22 release notes, encoding/json); af_json_quote writes \u0008, \u000c,
 * which only Argo <= 3.5 (Go 1.21) produced.
 */
static void test_bug_json_short_escapes(void)
{
        expect_json("a\bb", "\"a\\bb\"");
        expect_json("a\fb", "\"a\\fb\"");
}

/*
 * BUG: Go's encoding/json replaces each byte of invalid UTF-8 with U+FFFD, written "\ufffd"
 * (encode.go appendString: utf8.DecodeRune gives RuneError of size 1). af_json_quote copies
 * the raw bytes, so a Latin-1 annotation gives a different .json value, and invalid JSON.
 */
static void test_bug_json_invalid_utf8(void)
{
        expect_json("\xff", "\"\\ufffd\"");
        expect_json("caf\xe9", "\"caf\\ufffd\"");
        expect_json("x\xe2\x80", "\"x\\ufffd\\ufffd\""); /* a truncated U+2028 */
        expect_json("\xc0\xaf", "\"\\ufffd\\ufffd\"");     /* an overlong "/" */
}

/* ---- variables from the spec ---- */

static const char full_spec[] =
        "apiVersion: argoproj.io/v1alpha1\n"
        "kind: Workflow\n"
        "metadata:\n"
        "  name: train-x7k2p\n"
        "  namespace: ml-prod\n"
        "  uid: 0b9a3c1e-5d2f-4e8a-9c7b-1f2e3d4c5b6a\n"
        "  labels:\n"
        "    team: ml\n"
        "    app: trainer\n"
        "    Zone: eu\n"
        "    workflows.argoproj.io/creator: system-serviceaccount-argo\n"
        "  annotations:\n"
        "    owner: \"ana <ana@example.com>\"\n"
        "    note: \"line1\\nline2 \\\"quoted\\\" & more\"\n"
        "spec:\n"
        "  entrypoint: train\n"
        "  serviceAccountName: argo-workflow\n"
        "  arguments:\n"
        "    parameters:\n"
        "      - name: a\n"
        "        value: \"1\"\n"
        "      - name: b\n"
        "      - name: msg\n"
        "        value: 'say \"hi\" <now>'\n"
        "  templates:\n"
        "    - name: train\n"
        "      inputs:\n"
        "        parameters:\n"
        "          - name: epochs\n"
        "            value: \"30\"\n"
        "          - name: lr\n"
        "      container:\n"
        "        image: python:3.12\n"
        "      outputs:\n"
        "        artifacts:\n"
        "          - name: model\n"
        "            path: /out/model.pt\n";

static void test_spec_scalars(void)
{
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(full_spec, NULL, &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        CHECK_VAR(&v, "workflow.name", "train-x7k2p");
        CHECK_VAR(&v, "workflow.namespace", "ml-prod");
        CHECK_VAR(&v, "workflow.uid", "0b9a3c1e-5d2f-4e8a-9c7b-1f2e3d4c5b6a");
        CHECK_VAR(&v, "workflow.serviceAccountName", "argo-workflow");
        CHECK_VAR(&v, "workflow.mainEntrypoint", "train");
        CHECK_VAR(&v, "workflow.labels.team", "ml");
        CHECK_VAR(&v, "workflow.labels.Zone", "eu");
        CHECK_VAR(&v, "workflow.labels.workflows.argoproj.io/creator",
                  "system-serviceaccount-argo");
        CHECK_VAR(&v, "workflow.annotations.owner", "ana <ana@example.com>");
        CHECK_VAR(&v, "workflow.annotations.note", "line1\nline2 \"quoted\" & more");
        CHECK_VAR(&v, "workflow.parameters.a", "1");
        CHECK_VAR(&v, "workflow.parameters.msg", "say \"hi\" <now>");
        /* a parameter without a value gives no variable (Argo: an error at submission) */
        CHECK(get(&v, "workflow.parameters.b") == NULL);
        /* the template's inputs.parameters, with their values */
        CHECK_VAR(&v, "inputs.parameters.epochs", "30");
        CHECK(get(&v, "inputs.parameters.lr") == NULL);
        /* not from the spec: pod.name, the creation time */
        CHECK(get(&v, "pod.name") == NULL);
        CHECK(get(&v, "workflow.creationTimestamp") == NULL);
        CHECK_STR_EQ(af_vars_get(&v, "workflow.name")->source, "spec");
        af_vars_done(&v);
        af_spec_done(&spec);
}

static void test_spec_json(void)
{
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(full_spec, NULL, &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        /* sorted bytewise (upper case first), compact, no trailing comma */
        CHECK_VAR(&v, "workflow.labels.json",
                  "{\"Zone\":\"eu\",\"app\":\"trainer\",\"team\":\"ml\","
                  "\"workflows.argoproj.io/creator\":\"system-serviceaccount-argo\"}");
        CHECK_VAR(&v, "workflow.annotations.json",
                  "{\"note\":\"line1\\nline2 \\\"quoted\\\" \\u0026 more\","
                  "\"owner\":\"ana \\u003cana@example.com\\u003e\"}");
        /* []Parameter: name then value, a missing value omitted */
        CHECK_VAR(&v, "workflow.parameters.json",
                  "[{\"name\":\"a\",\"value\":\"1\"},{\"name\":\"b\"},"
                  "{\"name\":\"msg\",\"value\":\"say \\\"hi\\\" \\u003cnow\\u003e\"}]");
        af_vars_done(&v);
        af_spec_done(&spec);
}

/* The brief's own example, and one label: the smallest non-empty forms. */
static void test_spec_json_small(void)
{
        static const char yaml[] =
                "kind: Workflow\n"
                "metadata: {name: w, labels: {k: v}, annotations: {x: \"\"}}\n"
                "spec:\n"
                "  entrypoint: t\n"
                "  arguments: {parameters: [{name: a, value: \"1\"}, {name: b}]}\n"
                "  templates: [{name: t, container: {image: i}}]\n";
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(yaml, NULL, &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        CHECK_VAR(&v, "workflow.parameters.json", "[{\"name\":\"a\",\"value\":\"1\"},{\"name\":\"b\"}]");
        CHECK_VAR(&v, "workflow.labels.json", "{\"k\":\"v\"}");
        CHECK_VAR(&v, "workflow.annotations.json", "{\"x\":\"\"}");
        CHECK_VAR(&v, "workflow.annotations.x", "");
        af_vars_done(&v);
        af_spec_done(&spec);
}

/* Nothing the caller already set is replaced: --var first, then the spec. */
static void test_spec_keeps_existing(void)
{
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(full_spec, NULL, &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_vars_set(&v, "workflow.name", "from-var", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(&v, "workflow.labels.team", "infra", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(&v, "workflow.labels.json", "{}", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(&v, "workflow.parameters.a", "9", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(&v, "workflow.parameters.json", "[]", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(&v, "inputs.parameters.epochs", "1", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(&v, "workflow.namespace", "ns", "--var", true), 0);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        CHECK_VAR(&v, "workflow.name", "from-var");
        CHECK_STR_EQ(af_vars_get(&v, "workflow.name")->source, "--var");
        CHECK_VAR(&v, "workflow.labels.team", "infra");
        CHECK_VAR(&v, "workflow.labels.json", "{}");
        CHECK_VAR(&v, "workflow.parameters.a", "9");
        CHECK_VAR(&v, "workflow.parameters.json", "[]");
        CHECK_VAR(&v, "inputs.parameters.epochs", "1");
        CHECK_VAR(&v, "workflow.namespace", "ns");
        /* what was not set comes from the spec */
        CHECK_VAR(&v, "workflow.labels.app", "trainer");
        CHECK_VAR(&v, "workflow.uid", "0b9a3c1e-5d2f-4e8a-9c7b-1f2e3d4c5b6a");
        /* a second call changes nothing */
        {
                size_t n = v.n;

                CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
                CHECK_INT_EQ(v.n, n);
        }
        af_vars_done(&v);
        af_spec_done(&spec);
}

/* --template picks which template's inputs.parameters become inputs.parameters.* */
static void test_spec_inputs_of_chosen_template(void)
{
        static const char yaml[] =
                "kind: Workflow\n"
                "metadata: {generateName: pipe-}\n"
                "spec:\n"
                "  entrypoint: main\n"
                "  templates:\n"
                "    - name: main\n"
                "      steps: [[{name: a, template: gen}]]\n"
                "    - name: gen\n"
                "      inputs: {parameters: [{name: day, value: mon}, {name: shard, value: '3'}]}\n"
                "      container: {image: alpine}\n"
                "    - name: other\n"
                "      inputs: {parameters: [{name: day, value: tue}]}\n"
                "      container: {image: alpine}\n";
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(yaml, "gen", &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        CHECK_VAR(&v, "inputs.parameters.day", "mon");
        CHECK_VAR(&v, "inputs.parameters.shard", "3");
        CHECK_VAR(&v, "workflow.mainEntrypoint", "main");
        /* only generateName: Argo adds a random suffix, so there is no workflow.name */
        CHECK(get(&v, "workflow.name") == NULL);
        af_vars_done(&v);
        af_spec_done(&spec);
}

/* A resolved template (/var/run/argo/template) has no workflow metadata: inputs only. */
static void test_spec_resolved_template(void)
{
        static const char json[] =
                "{\"name\":\"main\",\"inputs\":{\"parameters\":[{\"name\":\"day\","
                "\"value\":\"mon\"}]},\"outputs\":{\"artifacts\":[{\"name\":\"a\","
                "\"path\":\"/tmp/a\"}]},\"metadata\":{\"labels\":{\"k\":\"v\"}},"
                "\"container\":{\"name\":\"\",\"image\":\"alpine\",\"resources\":{}},"
                "\"archiveLocation\":{\"archiveLogs\":false,\"s3\":{\"endpoint\":\"minio:9000\","
                "\"bucket\":\"b\",\"insecure\":true,\"key\":\"wf/wf-main-1\"}}}";
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(json, NULL, &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        CHECK_VAR(&v, "inputs.parameters.day", "mon");
        CHECK(get(&v, "workflow.name") == NULL);
        CHECK(get(&v, "workflow.labels.k") == NULL); /* pod metadata, not the workflow's */
        CHECK(get(&v, "workflow.labels.json") == NULL);
        CHECK(get(&v, "workflow.annotations.json") == NULL);
        CHECK(get(&v, "workflow.parameters.json") == NULL);
        CHECK_INT_EQ(v.n, 1);
        af_vars_done(&v);
        af_spec_done(&spec);
}

static void test_spec_null(void)
{
        struct af_vars v;

        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, NULL), 0);
        CHECK_INT_EQ(v.n, 0);
        af_vars_done(&v);
}

/* A map whose JSON passes the cap: no .json variable, the rest still works (argovars.c). */
static void test_spec_huge_json_dropped(void)
{
        struct af_buf yaml;
        struct af_spec spec;
        struct af_vars v;

        af_buf_init(&yaml, 0);
        (void)af_buf_adds(&yaml, "kind: Workflow\nmetadata:\n  name: w\n  labels:\n");
        for (int i = 0; i < 3; i++) {
                (void)af_buf_addf(&yaml, "    k%d: \"", i);
                /* 3 x 400,000: the JSON passes AF_VAR_VALUE_MAX (1 MiB), each value does not */
                for (int j = 0; j < 400000; j++)
                        (void)af_buf_addc(&yaml, 'x');
                (void)af_buf_adds(&yaml, "\"\n");
        }
        (void)af_buf_adds(&yaml, "spec:\n  entrypoint: t\n  templates: [{name: t, container: {}}]\n");
        if (parse_spec(af_buf_str(&yaml), NULL, &spec)) {
                af_vars_init(&v);
                CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
                CHECK(get(&v, "workflow.labels.json") == NULL);
                CHECK(get(&v, "workflow.labels.k2") != NULL && strlen(get(&v, "workflow.labels.k2")) == 400000);
                CHECK_VAR(&v, "workflow.name", "w");
                af_vars_done(&v);
                af_spec_done(&spec);
        }
        af_buf_done(&yaml);
}

/*
 * BUG: a map whose JSON is exactly AF_VAR_VALUE_MAX (4096) bytes fits the buffer's cap but
 * not af_vars_set() (value < 4096), so af_argo_vars_from_spec() fails with -EINVAL, while
 * one byte more is "a huge map: no .json variable, the rest still works". fs/main.c then
 * reports "out of memory". {"k":"<4088 x>"} is 6 + 4088 + 2 = 4096 bytes.
 */
static void test_bug_json_exactly_at_cap(void)
{
        struct af_buf yaml;
        struct af_spec spec;
        struct af_vars v;

        af_buf_init(&yaml, 0);
        (void)af_buf_adds(&yaml, "kind: Workflow\nmetadata:\n  name: w\n  labels:\n    k: \"");
        for (int j = 0; j < 4088; j++)
                (void)af_buf_addc(&yaml, 'x');
        (void)af_buf_adds(&yaml, "\"\nspec:\n  entrypoint: t\n  templates: [{name: t, container: {}}]\n");
        if (parse_spec(af_buf_str(&yaml), NULL, &spec)) {
                af_vars_init(&v);
                CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
                CHECK_VAR(&v, "workflow.name", "w");
                af_vars_done(&v);
                af_spec_done(&spec);
        }
        af_buf_done(&yaml);
}

/*
 * BUG: Argo marshals a nil slice as "null" (encoding/json), and a Workflow with no
 * spec.arguments.parameters has a nil Arguments.Parameters, so workflow.parameters.json is
 * "null" (operator.go setGlobalParameters: json.Marshal(execWf.Spec.Arguments.Parameters)).
 * artifuse gives "[]". (Labels and annotations are maps, "null" when nil too, but by the time
 * most pods are created the controller has added its own labels and annotations to the
 * workflow, which no spec file shows: see the report, not tested here.)
 */
static void test_bug_parameters_json_of_none(void)
{
        static const char yaml[] =
                "kind: Workflow\n"
                "metadata: {name: w}\n"
                "spec: {entrypoint: t, templates: [{name: t, container: {image: i}}]}\n";
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(yaml, NULL, &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        CHECK_VAR(&v, "workflow.parameters.json", "null");
        af_vars_done(&v);
        af_spec_done(&spec);
}

/*
 * BUG: Argo also sets the bare names workflow.parameters, workflow.labels and
 * workflow.annotations, each to the same JSON as its .json variant (operator.go
 * setGlobalParameters: GlobalVarWorkflowParameters next to GlobalVarWorkflowParametersJSON,
 * likewise for labels and annotations). artifuse sets only the .json names.
 */
static void test_bug_bare_json_names(void)
{
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(full_spec, NULL, &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        CHECK_STR_EQ(get(&v, "workflow.parameters"), get(&v, "workflow.parameters.json"));
        CHECK_STR_EQ(get(&v, "workflow.labels"), get(&v, "workflow.labels.json"));
        CHECK_STR_EQ(get(&v, "workflow.annotations"), get(&v, "workflow.annotations.json"));
        af_vars_done(&v);
        af_spec_done(&spec);
}

/*
 * BUG: Argo's Parameter marshals every field it has, in struct order (name, default, value,
 * valueFrom, globalName, enum, description; omitempty). WorkflowTemplates commonly give
 * enum and description for the UI; artifuse writes only name and value.
 */
static void test_bug_parameters_json_all_fields(void)
{
        static const char yaml[] =
                "kind: Workflow\n"
                "metadata: {name: w}\n"
                "spec:\n"
                "  entrypoint: t\n"
                "  arguments:\n"
                "    parameters:\n"
                "      - name: env\n"
                "        value: prod\n"
                "        enum: [prod, dev]\n"
                "        description: where to deploy\n"
                "  templates: [{name: t, container: {image: i}}]\n";
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(yaml, NULL, &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        CHECK_VAR(&v, "workflow.parameters.json",
                  "[{\"name\":\"env\",\"value\":\"prod\",\"enum\":[\"prod\",\"dev\"],"
                  "\"description\":\"where to deploy\"}]");
        af_vars_done(&v);
        af_spec_done(&spec);
}

/*
 * BUG (spec.c): a template declares its input parameters with "default:" ("the default
 * value to use for an input parameter if a value was not supplied", Argo's Parameter); only
 * "value:" is read, so {{inputs.parameters.N}} of a parameter with a default is reported as
 * not set. Argo resolves it to the default when the caller passes nothing.
 */
static void test_bug_inputs_default(void)
{
        static const char yaml[] =
                "kind: Workflow\n"
                "metadata: {name: w}\n"
                "spec:\n"
                "  entrypoint: t\n"
                "  templates:\n"
                "    - name: t\n"
                "      inputs:\n"
                "        parameters:\n"
                "          - name: region\n"
                "            default: eu-west-1\n"
                "          - name: both\n"
                "            default: d\n"
                "            value: v\n"
                "      container: {image: i}\n";
        struct af_spec spec;
        struct af_vars v;

        if (!parse_spec(yaml, NULL, &spec))
                return;
        af_vars_init(&v);
        CHECK_INT_EQ(af_argo_vars_from_spec(&v, &spec), 0);
        CHECK_VAR(&v, "inputs.parameters.region", "eu-west-1");
        CHECK_VAR(&v, "inputs.parameters.both", "v"); /* value takes precedence */
        af_vars_done(&v);
        af_spec_done(&spec);
}

int main(void)
{
        RUN(test_time_letters);
        RUN(test_time_variable_set);
        RUN(test_time_keeps_existing);
        RUN(test_rfc3339_round_trip);
        RUN(test_json_quote);
        RUN(test_json_quote_appends);
        RUN(test_spec_scalars);
        RUN(test_spec_json);
        RUN(test_spec_json_small);
        RUN(test_spec_keeps_existing);
        RUN(test_spec_inputs_of_chosen_template);
        RUN(test_spec_resolved_template);
        RUN(test_spec_null);
        RUN(test_spec_huge_json_dropped);
        /* Known bugs: these fail until argovars.c / spec.c are fixed (see each comment). */
        RUN(test_bug_json_short_escapes);
        RUN(test_bug_json_invalid_utf8);
        RUN(test_bug_json_exactly_at_cap);
        RUN(test_bug_parameters_json_of_none);
        RUN(test_bug_bare_json_names);
        RUN(test_bug_parameters_json_all_fields);
        RUN(test_bug_inputs_default);
        return test_summary();
}
