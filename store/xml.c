#include "store/xml.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>

#include "store/err.h"

#define XML_MAX_TEXT (64u << 10)

typedef struct xml_state {
	XML_Parser p;
	const char *path[XML_MAX_DEPTH];
	char *names[XML_MAX_DEPTH];
	int depth;
	char *text;
	size_t len, cap;
	xml_elem_fn fn;
	void *arg;
	int rc; /* the first failure: fn's, or our own limits */
} xml_state;

static void stop(xml_state *s, int rc)
{
	if (s->rc == 0)
		s->rc = rc;
	XML_StopParser(s->p, XML_FALSE);
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	(void)attrs;
	xml_state *s = ud;
	if (s->rc != 0)
		return;
	if (s->depth >= XML_MAX_DEPTH) {
		stop(s, err_set(DRE_ECORRUPT, "nested deeper than %d elements", XML_MAX_DEPTH));
		return;
	}
	s->names[s->depth] = strdup(name);
	if (s->names[s->depth] == NULL) {
		stop(s, err_set(DRE_ENOMEM, "out of memory"));
		return;
	}
	s->path[s->depth] = s->names[s->depth];
	s->depth++;
	s->len = 0; /* text before a child element is mixed content, which S3 documents do not have */
}

static void on_text(void *ud, const XML_Char *t, int n)
{
	xml_state *s = ud;
	if (s->rc != 0 || n <= 0)
		return;
	if (s->len + (size_t)n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		while (cap < s->len + (size_t)n + 1)
			cap *= 2;
		if (cap > XML_MAX_TEXT) {
			stop(s, err_set(DRE_ECORRUPT, "an element's text is over %u bytes", XML_MAX_TEXT));
			return;
		}
		char *p = realloc(s->text, cap);
		if (p == NULL) {
			stop(s, err_set(DRE_ENOMEM, "out of memory"));
			return;
		}
		s->text = p;
		s->cap = cap;
	}
	memcpy(s->text + s->len, t, (size_t)n);
	s->len += (size_t)n;
	s->text[s->len] = '\0';
}

static void on_end(void *ud, const XML_Char *name)
{
	(void)name;
	xml_state *s = ud;
	if (s->rc != 0 || s->depth == 0)
		return;
	int rc = s->fn(s->arg, s->path, s->depth, s->len ? s->text : "", s->len);
	s->depth--;
	free(s->names[s->depth]);
	s->names[s->depth] = NULL;
	s->len = 0;
	if (rc < 0)
		stop(s, rc);
}

int xml_parse(const char *doc, size_t len, const char *what, xml_elem_fn fn, void *arg)
{
	xml_state s = {.fn = fn, .arg = arg};
	s.p = XML_ParserCreate("UTF-8");
	if (s.p == NULL)
		return err_set(DRE_ENOMEM, "%s: cannot create an XML parser", what);
	XML_SetUserData(s.p, &s);
	XML_SetElementHandler(s.p, on_start, on_end);
	XML_SetCharacterDataHandler(s.p, on_text);
	enum XML_Status st = XML_Parse(s.p, doc, (int)len, XML_TRUE);
	int rc = s.rc;
	if (rc == 0 && st != XML_STATUS_OK)
		rc = err_set(DRE_ECORRUPT, "%s: malformed XML at line %lu: %s", what,
			     (unsigned long)XML_GetCurrentLineNumber(s.p), XML_ErrorString(XML_GetErrorCode(s.p)));
	for (int i = 0; i < s.depth; i++)
		free(s.names[i]);
	free(s.text);
	XML_ParserFree(s.p);
	return rc;
}

int xml_path_is(const char *const *path, int depth, const char *const *names)
{
	int i = 0;
	for (; names[i] != NULL; i++)
		if (i >= depth || strcmp(path[i], names[i]) != 0)
			return 0;
	return i == depth;
}
