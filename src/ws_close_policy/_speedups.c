/* Optional C accelerator for the two hot decisions (see ws_close_policy/_accel.py).
 *
 * Each decider wraps the pure-Python decision built by inbound.py or outbound.py ("slow")
 * and finishes only the common case: valid text that decodes to a well-formed message, or
 * a dict that serialises within the limit. It returns the very Close objects the Python
 * decision prepared for the three structure refusals and hands every other case to slow,
 * which stays the single source of truth. tests/test_speedups.py checks that both paths
 * return equal actions for any input.
 *
 * A dispatcher makes decide_inbound(data, policy) / decide_outbound(message, policy) call
 * the policy's decider without a Python frame in between.
 *
 * Nothing keeps state between calls but one thing: each decider keeps the last Accept or
 * Send it returned, to refill it once the caller has dropped it (see "kept actions").
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <structmember.h>

static PyObject *zero;      /* the int 0: the stdlib scanner's start index */
static PyObject *empty_str; /* "": joins the stdlib encoder's chunks */
static PyObject *empty_bytes; /* b"": a kept Send's data while the next message encodes */

/* --- shared helpers ------------------------------------------------------------------ */

/* The offset of one slot of `cls`, from its member descriptor; -1 with TypeError set.
 * Slots of the frozen action dataclasses are filled through it: the object is new and its
 * values are valid by construction, so the dataclass __init__ has nothing to add. */
static Py_ssize_t
slot_offset(PyObject *cls, const char *name)
{
    PyObject *descriptor = PyDict_GetItemString(((PyTypeObject *)cls)->tp_dict, name);
    if (descriptor == NULL || !Py_IS_TYPE(descriptor, &PyMemberDescr_Type)
        || PyDescr_TYPE(descriptor) != (PyTypeObject *)cls) {
        PyErr_Format(PyExc_TypeError, "%R has no slot %s", cls, name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "%R.%s is not a writable object slot", cls, name);
        return -1;
    }
    return member->offset;
}

static inline PyObject **
slot_at(PyObject *obj, Py_ssize_t offset)
{
    return (PyObject **)((char *)obj + offset);
}

/* Fill an empty slot of a new object with a new reference to `value`. */
static inline void
fill_slot(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    *slot_at(obj, offset) = Py_NewRef(value);
}

/* --- kept actions ---------------------------------------------------------------------
 *
 * Allocating and freeing the returned Accept or Send costs about a fifth of a 200-byte
 * orjson call, so each decider keeps the last one it returned (when its message was at
 * most KEEP_MAX_BYTES) and refills it once the caller has dropped it: a reference count of
 * 1 means the decider holds the only reference, so no one can see the change (the action
 * classes have no __weakref__ slot and do not cache their hash). zip() and enumerate()
 * reuse their result tuple the same way.
 *
 * Python code must not run between the check and the caller's reference: it could call
 * the same decider and be handed the same object. So callers make every new object before
 * the check (an allocation can start the garbage collector, and with it finalizers), and
 * refill() frees the old values only after taking the caller's reference (an accepted
 * message may hold anything the application put in it since, __del__ included).
 *
 * Before decoding or encoding the next message the kept action's payload is released, so
 * the allocator can hand the codec the block just freed, still in the CPU cache; until it
 * is refilled the action holds a placeholder that only gc.get_objects() could show.
 * Without the GIL a reference count proves nothing: free-threaded builds always allocate. */

/* A kept action keeps at most this much of the last message alive between two calls. */
#define KEEP_MAX_BYTES 65536

/* The kept action if the decider holds the only reference to it, else NULL. */
static inline PyObject *
idle(PyObject *kept)
{
#ifndef Py_GIL_DISABLED
    if (kept != NULL && Py_REFCNT(kept) == 1) {
        return kept;
    }
#endif
    return NULL;
}

/* An idle kept action with `n` (at most 3) slots refilled, as a new reference. */
static inline PyObject *
refill(PyObject *action, int n, const Py_ssize_t *offsets, PyObject *const *values)
{
    PyObject *old[3];
    for (int i = 0; i < n; i++) {
        PyObject **slot = slot_at(action, offsets[i]);
        old[i] = *slot;
        *slot = Py_NewRef(values[i]);
    }
    Py_INCREF(action); /* busy from here on, before any old value is freed */
    for (int i = 0; i < n; i++) {
        Py_DECREF(old[i]);
    }
    return action;
}

/* Swap the payload of the kept action, if idle, for a placeholder. */
static inline void
release(PyObject *kept, Py_ssize_t offset, PyObject *placeholder)
{
    PyObject *action = idle(kept);
    if (action != NULL) {
        Py_SETREF(*slot_at(action, offset), Py_NewRef(placeholder));
    }
}

/* Keep a new action for the next call, if its message was small enough. */
static inline void
keep(PyObject **kept, PyObject *action, Py_ssize_t size)
{
#ifndef Py_GIL_DISABLED
    if (size <= KEEP_MAX_BYTES) {
        Py_XSETREF(*kept, Py_NewRef(action));
    }
#endif
}

/* Clear an Exception, which the slow path will meet again and explain. Anything else
 * (KeyboardInterrupt, SystemExit) stays raised: returns -1 then, 0 when cleared. */
static int
clear_exception(void)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyErr_Clear();
    return 0;
}

/* The exception being raised, taken (3.12's PyErr_GetRaisedException). */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
#endif
}

static int
check_callable(PyObject *obj, const char *name)
{
    if (!PyCallable_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be callable", name);
        return 0;
    }
    return 1;
}

/* --- decoded values ------------------------------------------------------------------ */

/* Whether a string holds a UTF-16 surrogate, which only a lone "\uD800"-style escape
 * decodes to (the stdlib joins escaped pairs). */
static int
has_surrogate(PyObject *text)
{
    if (PyUnicode_IS_ASCII(text)) {
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_KIND(text) == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *data = PyUnicode_2BYTE_DATA(text);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (data[i] >= 0xD800 && data[i] <= 0xDFFF) {
                return 1;
            }
        }
    }
    else if (PyUnicode_KIND(text) == PyUnicode_4BYTE_KIND) {
        const Py_UCS4 *data = PyUnicode_4BYTE_DATA(text);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (data[i] >= 0xD800 && data[i] <= 0xDFFF) {
                return 1;
            }
        }
    }
    return 0;
}

/* Whether a scalar needs the slow path under the strict checks: an infinite float (the
 * stdlib reads 1e400 as inf) or a string with a lone surrogate. */
static inline int
strict_scalar_fails(PyObject *value)
{
    if (PyFloat_CheckExact(value)) {
        return !isfinite(PyFloat_AS_DOUBLE(value));
    }
    return PyUnicode_CheckExact(value) && has_surrogate(value);
}

static int needs_slow_path(PyObject *value, int left, int strict);

static inline int
child_needs_slow_path(PyObject *child, int left, int strict)
{
    if (PyDict_CheckExact(child) || PyList_CheckExact(child)) {
        return needs_slow_path(child, left, strict);
    }
    return strict && strict_scalar_fails(child);
}

/* Whether a decoded container needs the slow path: nested more than `left` levels of
 * arrays and objects, or (strict) holding a value strict_scalar_fails refuses. Recursion
 * stops `left` levels down, and max_depth is at most 256. */
static int
needs_slow_path(PyObject *value, int left, int strict)
{
    if (left == 0) {
        return 1;
    }
    if (PyDict_CheckExact(value)) {
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            if (strict && PyUnicode_CheckExact(key) && has_surrogate(key)) {
                return 1;
            }
            if (child_needs_slow_path(item, left - 1, strict)) {
                return 1;
            }
        }
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
        if (child_needs_slow_path(PyList_GET_ITEM(value, i), left - 1, strict)) {
            return 1;
        }
    }
    return 0;
}

/* Whether UTF-8 text holds more than `limit` '[' and '{' together: a bound on its nesting
 * depth that costs far less than walking the decoded value (memchr is vectorised; it runs
 * at most limit + 2 times). Those bytes never occur inside a multi-byte UTF-8 sequence. */
static int
more_openers_than(const char *start, Py_ssize_t size, Py_ssize_t limit)
{
    const char *end = start + size;
    Py_ssize_t count = 0;
    const char openers[2] = {'{', '['};
    for (int i = 0; i < 2; i++) {
        for (const char *p = start; (p = memchr(p, openers[i], end - p)) != NULL; p++) {
            if (++count > limit) {
                return 1;
            }
        }
    }
    return 0;
}

/* --- inbound ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *slow;           /* the Python decision: every case this one does not finish */
    PyObject *decode;         /* loads(text), or the stdlib's scan_once(text, 0) */
    int scan;                 /* decode is scan_once: it returns (value, end) */
    int strict;               /* check floats and strings after decoding (the stdlib) */
    Py_ssize_t limit;         /* max_bytes */
    Py_ssize_t depth_floor;   /* a text this short cannot nest more than max_depth deep */
    int max_depth;
    PyObject *type_field;
    PyObject *allowed;        /* a frozenset, or None for any non-empty str */
    PyTypeObject *accept_type;
    Py_ssize_t message_slot;  /* Accept.message and Accept.type */
    Py_ssize_t type_slot;
    PyObject *not_an_object;  /* the profile's prepared closes */
    PyObject *missing_type;
    PyObject *unknown_type;
    PyObject *kept;           /* the last Accept of a small message returned, or NULL */
} InboundDecider;

static PyObject *
inbound_slow(InboundDecider *self, PyObject *data)
{
    return PyObject_CallOneArg(self->slow, data);
}

/* The decoded value of a whole text, or NULL with an exception set (for the slow
 * path: the scanner stops before trailing data or refuses leading whitespace). */
static PyObject *
inbound_decode(InboundDecider *self, PyObject *text)
{
    if (!self->scan) {
        return PyObject_CallOneArg(self->decode, text);
    }
    PyObject *args[2] = {text, zero};
    PyObject *result = PyObject_Vectorcall(self->decode, args, 2, NULL);
    if (result == NULL) {
        return NULL;
    }
    PyObject *value = NULL;
    if (PyTuple_CheckExact(result) && PyTuple_GET_SIZE(result) == 2) {
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(result, 1));
        if (end == PyUnicode_GET_LENGTH(text)) {
            value = Py_NewRef(PyTuple_GET_ITEM(result, 0));
        }
    }
    Py_DECREF(result);
    if (value == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "not one whole JSON document");
    }
    return value;
}

/* Accept(message, kind), refilling the kept one when it is idle (see "kept actions"). */
static PyObject *
inbound_accept(InboundDecider *self, PyObject *message, PyObject *kind, Py_ssize_t size)
{
    PyObject *accept = idle(self->kept);
    if (accept != NULL && size <= KEEP_MAX_BYTES) {
        Py_ssize_t offsets[2] = {self->message_slot, self->type_slot};
        PyObject *values[2] = {message, kind};
        return refill(accept, 2, offsets, values);
    }
    accept = self->accept_type->tp_alloc(self->accept_type, 0);
    if (accept != NULL) {
        fill_slot(accept, self->message_slot, message);
        fill_slot(accept, self->type_slot, kind);
        keep(&self->kept, accept, size);
    }
    return accept;
}

/* inbound.py's structure checks on a decoded value: a new reference, or NULL. */
static PyObject *
inbound_structure(InboundDecider *self, PyObject *data, PyObject *message, Py_ssize_t size)
{
    if (!PyDict_CheckExact(message)) {
        return Py_NewRef(self->not_an_object);
    }
    PyObject *kind = PyDict_GetItemWithError(message, self->type_field);
    if (kind == NULL && PyErr_Occurred()) {
        return clear_exception() < 0 ? NULL : inbound_slow(self, data);
    }
    if (kind == NULL || !PyUnicode_CheckExact(kind) || PyUnicode_GET_LENGTH(kind) == 0) {
        return Py_NewRef(self->missing_type);
    }
    if (self->allowed != Py_None) {
        int found = PySet_Contains(self->allowed, kind);
        if (found < 0) {
            return clear_exception() < 0 ? NULL : inbound_slow(self, data);
        }
        if (!found) {
            return Py_NewRef(self->unknown_type);
        }
    }
    return inbound_accept(self, message, kind, size);
}

static PyObject *
inbound_call(InboundDecider *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
    }
    PyObject *data = args[0];
    /* Text only. Its UTF-8 form is the text itself when ASCII, else the copy the str keeps
     * once asked (the decoders use the same one); lone surrogates fail and go to Python. */
    if (!PyUnicode_CheckExact(data) || PyUnicode_GET_LENGTH(data) > self->limit) {
        return inbound_slow(self, data);
    }
    Py_ssize_t size = PyUnicode_GET_LENGTH(data);
    const char *utf8 = (const char *)PyUnicode_1BYTE_DATA(data);
    if (!PyUnicode_IS_ASCII(data)) {
        utf8 = PyUnicode_AsUTF8AndSize(data, &size);
        if (utf8 == NULL) {
            return clear_exception() < 0 ? NULL : inbound_slow(self, data);
        }
        if (size > self->limit) {
            return inbound_slow(self, data);
        }
    }
    release(self->kept, self->message_slot, Py_None); /* see "kept actions" */
    PyObject *message = inbound_decode(self, data);
    if (message == NULL) {
        return clear_exception() < 0 ? NULL : inbound_slow(self, data);
    }
    /* The strict checks need the walk; otherwise only a text long enough and with enough
     * brackets to nest more than max_depth deep does. */
    int walk = self->strict
               || (size > self->depth_floor && more_openers_than(utf8, size, self->max_depth));
    if (walk && child_needs_slow_path(message, self->max_depth, self->strict)) {
        Py_DECREF(message);
        return inbound_slow(self, data);
    }
    PyObject *result = inbound_structure(self, data, message, size);
    Py_DECREF(message);
    return result;
}

static int
inbound_traverse(InboundDecider *self, visitproc visit, void *arg)
{
    Py_VISIT(self->slow);
    Py_VISIT(self->decode);
    Py_VISIT(self->type_field);
    Py_VISIT(self->allowed);
    Py_VISIT(self->accept_type);
    Py_VISIT(self->not_an_object);
    Py_VISIT(self->missing_type);
    Py_VISIT(self->unknown_type);
    Py_VISIT(self->kept);
    return 0;
}

static int
inbound_clear(InboundDecider *self)
{
    Py_CLEAR(self->slow);
    Py_CLEAR(self->decode);
    Py_CLEAR(self->type_field);
    Py_CLEAR(self->allowed);
    Py_CLEAR(self->accept_type);
    Py_CLEAR(self->not_an_object);
    Py_CLEAR(self->missing_type);
    Py_CLEAR(self->unknown_type);
    Py_CLEAR(self->kept);
    return 0;
}

static void
inbound_dealloc(InboundDecider *self)
{
    PyObject_GC_UnTrack(self);
    inbound_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject InboundDeciderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws_close_policy._speedups.InboundDecider",
    .tp_doc = "decide_inbound's common case in C; every other case goes to the Python decision.",
    .tp_basicsize = sizeof(InboundDecider),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(InboundDecider, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)inbound_traverse,
    .tp_clear = (inquiry)inbound_clear,
    .tp_dealloc = (destructor)inbound_dealloc,
};

static PyObject *
make_inbound(PyObject *module, PyObject *args)
{
    PyObject *slow, *decode, *type_field, *allowed, *accept_type;
    PyObject *not_an_object, *missing_type, *unknown_type;
    int scan, strict, max_depth;
    Py_ssize_t limit, depth_floor;
    if (!PyArg_ParseTuple(args, "OOppnniUOO!OOO:inbound_decider", &slow, &decode, &scan,
                          &strict, &limit, &depth_floor, &max_depth, &type_field, &allowed,
                          &PyType_Type, &accept_type, &not_an_object, &missing_type,
                          &unknown_type)) {
        return NULL;
    }
    if (!check_callable(slow, "slow") || !check_callable(decode, "decode")) {
        return NULL;
    }
    if (allowed != Py_None && !PyFrozenSet_CheckExact(allowed)) {
        PyErr_SetString(PyExc_TypeError, "allowed must be a frozenset or None");
        return NULL;
    }
    if (max_depth < 1 || max_depth > 256) {
        PyErr_SetString(PyExc_ValueError, "max_depth must be in 1..256");
        return NULL;
    }
    Py_ssize_t message_slot = slot_offset(accept_type, "message");
    Py_ssize_t type_slot = slot_offset(accept_type, "type");
    if (message_slot < 0 || type_slot < 0) {
        return NULL;
    }
    InboundDecider *self = PyObject_GC_New(InboundDecider, &InboundDeciderType);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)inbound_call;
    self->slow = Py_NewRef(slow);
    self->decode = Py_NewRef(decode);
    self->scan = scan;
    self->strict = strict;
    self->limit = limit;
    self->depth_floor = depth_floor;
    self->max_depth = max_depth;
    self->type_field = Py_NewRef(type_field);
    self->allowed = Py_NewRef(allowed);
    self->accept_type = (PyTypeObject *)Py_NewRef(accept_type);
    self->message_slot = message_slot;
    self->type_slot = type_slot;
    self->not_an_object = Py_NewRef(not_an_object);
    self->missing_type = Py_NewRef(missing_type);
    self->unknown_type = Py_NewRef(unknown_type);
    self->kept = NULL;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* --- outbound ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *slow;          /* the Python decision: every message that is not a dict */
    PyObject *encode;        /* dumps(message) -> bytes, or the stdlib's C encoder -> chunks */
    int chunks;              /* encode returns chunks of str to join */
    /* encode's C function and self when it is a builtin taking (*args, **kwargs) in the
     * fastcall convention (orjson.dumps, msgspec's Encoder.encode): called directly, as
     * the interpreter's own specialised call does. NULL otherwise. */
    _PyCFunctionFastWithKeywords encode_fn;
    PyObject *encode_self;   /* borrowed: encode holds it */
    Py_ssize_t limit;        /* max_bytes */
    Py_ssize_t warn;         /* warn_bytes */
    PyObject *over_limit;    /* over_limit(message, size): the summary's Send, or a close */
    PyObject *on_error;      /* on_error(exception): the INTERNAL close */
    PyTypeObject *send_type;
    Py_ssize_t slots[5];     /* Send.data, .size, .text, .large, .degraded */
    PyObject *kept;          /* the last small Send returned, or NULL */
} OutboundDecider;

static const char *send_slots[5] = {"data", "size", "text", "large", "degraded"};

/* Send(data, size, text=True, large=size > warn, degraded=False), refilling the kept one
 * when it is idle (see "kept actions"). */
static PyObject *
outbound_send(OutboundDecider *self, PyObject *data, Py_ssize_t size)
{
    PyObject *size_obj = PyLong_FromSsize_t(size);
    if (size_obj == NULL) {
        return NULL;
    }
    PyObject *large = size > self->warn ? Py_True : Py_False;
    PyObject *send = idle(self->kept);
    if (send != NULL && size <= KEEP_MAX_BYTES) {
        Py_ssize_t offsets[3] = {self->slots[0], self->slots[1], self->slots[3]};
        PyObject *values[3] = {data, size_obj, large};
        send = refill(send, 3, offsets, values);
        Py_DECREF(size_obj);
        return send;
    }
    send = self->send_type->tp_alloc(self->send_type, 0);
    if (send != NULL) {
        fill_slot(send, self->slots[0], data);
        fill_slot(send, self->slots[1], size_obj);
        fill_slot(send, self->slots[2], Py_True);
        fill_slot(send, self->slots[3], large);
        fill_slot(send, self->slots[4], Py_False);
        keep(&self->kept, send, size);
    }
    Py_DECREF(size_obj);
    return send;
}

/* The serialised message, or NULL with the encoder's exception set. */
static PyObject *
outbound_encode(OutboundDecider *self, PyObject *message)
{
    if (self->encode_fn != NULL) {
        return self->encode_fn(self->encode_self, &message, 1, NULL);
    }
    if (!self->chunks) {
        return PyObject_CallOneArg(self->encode, message);
    }
    PyObject *args[2] = {message, zero};
    PyObject *chunks = PyObject_Vectorcall(self->encode, args, 2, NULL);
    if (chunks == NULL) {
        return NULL;
    }
    PyObject *text = PyUnicode_Join(empty_str, chunks);
    Py_DECREF(chunks);
    return text;
}

static PyObject *
outbound_call(OutboundDecider *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL || !PyDict_CheckExact(args[0])) {
        return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
    }
    PyObject *message = args[0];
    release(self->kept, self->slots[0], empty_bytes); /* see "kept actions" */
    PyObject *encoded = outbound_encode(self, message);
    if (encoded == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyObject *exc = take_exception();
        PyObject *close = PyObject_CallOneArg(self->on_error, exc);
        Py_DECREF(exc);
        return close;
    }
    Py_ssize_t size;
    if (PyBytes_CheckExact(encoded)) {
        size = PyBytes_GET_SIZE(encoded);
    }
    else if (PyUnicode_CheckExact(encoded) && PyUnicode_IS_ASCII(encoded)) {
        size = PyUnicode_GET_LENGTH(encoded);
    }
    else {
        /* Not what a built-in codec returns: the Python decision measures it. */
        Py_DECREF(encoded);
        return PyObject_CallOneArg(self->slow, message);
    }
    PyObject *result;
    if (size <= self->limit) {
        result = outbound_send(self, encoded, size);
    }
    else {
        PyObject *size_obj = PyLong_FromSsize_t(size);
        result = size_obj == NULL
                     ? NULL
                     : PyObject_CallFunctionObjArgs(self->over_limit, message, size_obj, NULL);
        Py_XDECREF(size_obj);
    }
    Py_DECREF(encoded);
    return result;
}

static int
outbound_traverse(OutboundDecider *self, visitproc visit, void *arg)
{
    Py_VISIT(self->slow);
    Py_VISIT(self->encode);
    Py_VISIT(self->over_limit);
    Py_VISIT(self->on_error);
    Py_VISIT(self->send_type);
    Py_VISIT(self->kept);
    return 0;
}

static int
outbound_clear(OutboundDecider *self)
{
    Py_CLEAR(self->slow);
    Py_CLEAR(self->encode);
    Py_CLEAR(self->over_limit);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->send_type);
    Py_CLEAR(self->kept);
    return 0;
}

static void
outbound_dealloc(OutboundDecider *self)
{
    PyObject_GC_UnTrack(self);
    outbound_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject OutboundDeciderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws_close_policy._speedups.OutboundDecider",
    .tp_doc = "decide_outbound's common case in C; every other case goes to the Python decision.",
    .tp_basicsize = sizeof(OutboundDecider),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(OutboundDecider, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)outbound_traverse,
    .tp_clear = (inquiry)outbound_clear,
    .tp_dealloc = (destructor)outbound_dealloc,
};

static PyObject *
make_outbound(PyObject *module, PyObject *args)
{
    PyObject *slow, *encode, *over_limit, *on_error, *send_type;
    int chunks;
    Py_ssize_t limit, warn;
    if (!PyArg_ParseTuple(args, "OOpnnOOO!:outbound_decider", &slow, &encode, &chunks, &limit,
                          &warn, &over_limit, &on_error, &PyType_Type, &send_type)) {
        return NULL;
    }
    if (!check_callable(slow, "slow") || !check_callable(encode, "encode")
        || !check_callable(over_limit, "over_limit") || !check_callable(on_error, "on_error")) {
        return NULL;
    }
    Py_ssize_t slots[5];
    for (int i = 0; i < 5; i++) {
        slots[i] = slot_offset(send_type, send_slots[i]);
        if (slots[i] < 0) {
            return NULL;
        }
    }
    OutboundDecider *self = PyObject_GC_New(OutboundDecider, &OutboundDeciderType);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)outbound_call;
    self->slow = Py_NewRef(slow);
    self->encode = Py_NewRef(encode);
    self->chunks = chunks;
    self->encode_fn = NULL;
    self->encode_self = NULL;
    if (!chunks && PyCFunction_Check(encode)
        && (PyCFunction_GET_FLAGS(encode) & ~METH_COEXIST) == (METH_FASTCALL | METH_KEYWORDS)) {
        PyCFunction function = PyCFunction_GET_FUNCTION(encode);
        self->encode_fn = (_PyCFunctionFastWithKeywords)(void (*)(void))function;
        self->encode_self = PyCFunction_GET_SELF(encode);
    }
    self->limit = limit;
    self->warn = warn;
    self->over_limit = Py_NewRef(over_limit);
    self->on_error = Py_NewRef(on_error);
    self->send_type = (PyTypeObject *)Py_NewRef(send_type);
    memcpy(self->slots, slots, sizeof(slots));
    self->kept = NULL;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* --- dispatcher ---------------------------------------------------------------------- */

/* decide(data, policy=DEFAULT) -> policy.<slot>(data), with no Python frame in between.
 * Any other call shape (keywords, a Policy subclass, a wrong argument) goes to the Python
 * function it stands for, which behaves and fails exactly as written. Its __dict__ carries
 * that function's __name__, __doc__ and __wrapped__ (functools.update_wrapper). */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *function;        /* the Python function: every other call shape */
    PyTypeObject *policy_type;
    Py_ssize_t decider_slot;   /* the policy's decider slot */
    PyObject *default_policy;
    PyObject *dict;
} Dispatcher;

static PyObject *
dispatch_call(Dispatcher *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL && (nargs == 1 || nargs == 2)) {
        PyObject *policy = nargs == 2 ? args[1] : self->default_policy;
        if (Py_IS_TYPE(policy, self->policy_type)) {
            PyObject *decide = *(PyObject **)((char *)policy + self->decider_slot);
            /* Call this module's deciders directly: one call layer less on the hot path. */
            if (decide != NULL && Py_IS_TYPE(decide, &InboundDeciderType)) {
                return inbound_call((InboundDecider *)decide, args, 1, NULL);
            }
            if (decide != NULL && Py_IS_TYPE(decide, &OutboundDeciderType)) {
                return outbound_call((OutboundDecider *)decide, args, 1, NULL);
            }
            if (decide != NULL) {
                return PyObject_Vectorcall(decide, args, 1, NULL);
            }
        }
    }
    return PyObject_Vectorcall(self->function, args, nargsf, kwnames);
}

static PyObject *
dispatch_repr(Dispatcher *self)
{
    return PyObject_Repr(self->function);
}

static PyObject *
dispatch_get(PyObject *self, PyObject *obj, PyObject *type)
{
    /* Like a builtin function: not bound when stored on a class. */
    return Py_NewRef(self);
}

static int
dispatch_traverse(Dispatcher *self, visitproc visit, void *arg)
{
    Py_VISIT(self->function);
    Py_VISIT(self->policy_type);
    Py_VISIT(self->default_policy);
    Py_VISIT(self->dict);
    return 0;
}

static int
dispatch_clear(Dispatcher *self)
{
    Py_CLEAR(self->function);
    Py_CLEAR(self->policy_type);
    Py_CLEAR(self->default_policy);
    Py_CLEAR(self->dict);
    return 0;
}

static void
dispatch_dealloc(Dispatcher *self)
{
    PyObject_GC_UnTrack(self);
    dispatch_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Pickled by reference, like the function it stands for: its name in its module. */
static PyObject *
dispatch_reduce(PyObject *self, PyObject *unused)
{
    return PyObject_GetAttrString(self, "__name__");
}

static PyMethodDef dispatch_methods[] = {
    {"__reduce__", dispatch_reduce, METH_NOARGS, NULL},
    {NULL},
};

static PyGetSetDef dispatch_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyTypeObject DispatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws_close_policy._speedups.Dispatcher",
    .tp_doc = "A decision function that calls the policy's C decider directly.",
    .tp_basicsize = sizeof(Dispatcher),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Dispatcher, vectorcall),
    .tp_dictoffset = offsetof(Dispatcher, dict),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)dispatch_repr,
    .tp_descr_get = dispatch_get,
    .tp_getset = dispatch_getset,
    .tp_methods = dispatch_methods,
    .tp_traverse = (traverseproc)dispatch_traverse,
    .tp_clear = (inquiry)dispatch_clear,
    .tp_dealloc = (destructor)dispatch_dealloc,
};

static PyObject *
make_dispatcher(PyObject *module, PyObject *args)
{
    PyObject *function, *policy_type, *default_policy;
    const char *slot;
    if (!PyArg_ParseTuple(args, "OO!sO:dispatcher", &function, &PyType_Type, &policy_type,
                          &slot, &default_policy)) {
        return NULL;
    }
    if (!check_callable(function, "function")) {
        return NULL;
    }
    Py_ssize_t decider_slot = slot_offset(policy_type, slot);
    if (decider_slot < 0) {
        return NULL;
    }
    Dispatcher *self = PyObject_GC_New(Dispatcher, &DispatcherType);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)dispatch_call;
    self->function = Py_NewRef(function);
    self->policy_type = (PyTypeObject *)Py_NewRef(policy_type);
    self->decider_slot = decider_slot;
    self->default_policy = Py_NewRef(default_policy);
    self->dict = NULL;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* --- module -------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"inbound_decider", make_inbound, METH_VARARGS,
     "inbound_decider(slow, decode, scan, strict, limit, depth_floor, max_depth, type_field, "
     "allowed, accept_type, not_an_object, missing_type, unknown_type)"},
    {"outbound_decider", make_outbound, METH_VARARGS,
     "outbound_decider(slow, encode, chunks, limit, warn, over_limit, on_error, send_type)"},
    {"dispatcher", make_dispatcher, METH_VARARGS,
     "dispatcher(function, policy_type, slot, default_policy)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ws_close_policy._speedups",
    .m_doc = "C fast paths for decide_inbound and decide_outbound (optional).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&InboundDeciderType) < 0 || PyType_Ready(&OutboundDeciderType) < 0
        || PyType_Ready(&DispatcherType) < 0) {
        return NULL;
    }
    zero = PyLong_FromLong(0);
    empty_str = PyUnicode_FromStringAndSize("", 0);
    empty_bytes = PyBytes_FromStringAndSize("", 0);
    if (zero == NULL || empty_str == NULL || empty_bytes == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
