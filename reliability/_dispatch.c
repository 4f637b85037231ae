/* reliability._dispatch: the request event's dispatch of reliability.request_dispatch, compiled.

   The same work as the Python ``fire`` that ``reliability.request_dispatch.take_over`` builds, case
   by case (that module's docstring is the specification, and it is the fallback where this
   extension is not built): count the common request (a success without a context, sent at an
   epoch float ``start_time`` with a float latency) into the plugin's store queues, send every
   other request to the plugin's general path, then run Locust 2.47's loop over the hook's
   listeners unchanged. Done here it runs no bytecode of its own for a request: in a saturated load
   generator each of the Python version's bytecodes costs several times its tight-loop price
   (``bench/overhead.py``).

   Nothing is cached across calls: the plugin's store, its queues and the listener list are read
   for every request, as the Python version reads them, so a store or queue replaced between two
   requests is never written to stale. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyObject *hook;       /* the EventHook taken over (its _handlers) */
    PyObject *plugin;     /* store, _expect_marks, count_other_request */
    PyObject *passed_on;  /* tuple of exception classes a listener's error passes on with */
    PyObject *report;     /* report(exc): logs a listener's error the way Locust does */
    PyObject *getcurrent; /* gevent.getcurrent */
    PyObject *mark_attr;  /* the greenlet attribute holding a paced task's intended start */
    Py_ssize_t limit;     /* length of store.quick that asks for a flush */
    Py_ssize_t paced_limit; /* length of store.paced that asks for a flush */
} FireObject;

static PyObject *s_exception, *s_context, *s_start_time, *s_request_type, *s_name, *s_response_time,
    *s_reverse, *s_store, *s_quick, *s_quick_ms, *s_append, *s_flush, *s_expect_marks,
    *s_count_other_request, *s_handlers, *s_dict, *s_copy, *s_get, *s_start_s, *s_interval_ms,
    *s_lag_from_s, *s_paced;
static PyObject *empty_tuple, *reversed_slice;

/* The error just raised by the counting or by a listener: 0 when it was logged (an Exception that
   is not one of Locust's control-flow exceptions), -1 when it passes on (the error still set). */
static int
handle_error(FireObject *self)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception) || PyErr_ExceptionMatches(self->passed_on))
        return -1;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    PyObject *done = PyObject_CallOneArg(self->report, value != NULL ? value : Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    return 0;
}

/* kwargs[key] (borrowed), or NULL with KeyError(key) set, as ``kwargs[key]`` raises it. */
static PyObject *
required(PyObject *kwargs, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(kwargs, key);
    if (value == NULL && !PyErr_Occurred())
        PyErr_SetObject(PyExc_KeyError, key);
    return value;
}

static int
append(PyObject *seq, PyObject *item)
{
    if (PyList_CheckExact(seq))
        return PyList_Append(seq, item);
    PyObject *done = PyObject_CallMethodOneArg(seq, s_append, item);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    return 0;
}

/* Whether ``start_time`` is Locust's send time: a float of epoch seconds (NULL: not passed). */
static int
is_epoch_float(PyObject *start_time)
{
    return start_time != NULL && PyFloat_CheckExact(start_time) && 1e9 <= PyFloat_AS_DOUBLE(start_time)
        && PyFloat_AS_DOUBLE(start_time) < 1e11;
}

/* store.flush() once ``queue`` holds ``limit`` items or more: 0 done, -1 error. */
static int
flush_at(PyObject *store, PyObject *queue, Py_ssize_t limit)
{
    Py_ssize_t length = PyList_CheckExact(queue) ? PyList_GET_SIZE(queue) : PyObject_Length(queue);
    if (length < 0)
        return -1;
    if (length < limit)
        return 0;
    PyObject *done = PyObject_CallMethodNoArgs(store, s_flush);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    return 0;
}

/* A paced task's success, as the plugin's ``queue_scheduled`` queues it: when its mark's start is
   not consumed yet and its latency and send time are floats, the seven fields go to store.paced and
   the mark's start is consumed. 1 queued, 0 not (the general path counts it), -1 error. */
static int
queue_scheduled(FireObject *self, PyObject *kwargs, PyObject *mark, PyObject *start_time)
{
    PyObject *request_type = required(kwargs, s_request_type), *name, *response_time;
    if (request_type == NULL || (name = required(kwargs, s_name)) == NULL
            || (response_time = required(kwargs, s_response_time)) == NULL)
        return -1;
    PyObject *intended = PyObject_GetAttr(mark, s_start_s);
    if (intended == NULL)
        return -1;
    int queued = intended != Py_None && is_epoch_float(start_time) && PyFloat_CheckExact(response_time) && 0.0 <= PyFloat_AS_DOUBLE(response_time)
        && PyFloat_AS_DOUBLE(response_time) < Py_HUGE_VAL;
    if (!queued) {
        Py_DECREF(intended);
        return 0;
    }
    PyObject *interval_ms = NULL, *lag_from_s = NULL, *store = NULL, *paced = NULL;
    int failed = PyObject_SetAttr(mark, s_start_s, Py_None) < 0  /* the task's first request consumes it */
        || (interval_ms = PyObject_GetAttr(mark, s_interval_ms)) == NULL
        || (lag_from_s = PyObject_GetAttr(mark, s_lag_from_s)) == NULL
        || (store = PyObject_GetAttr(self->plugin, s_store)) == NULL
        || (paced = PyObject_GetAttr(store, s_paced)) == NULL;
    PyObject *fields[] = {request_type, name, response_time, start_time, intended, interval_ms, lag_from_s};
    for (size_t i = 0; !failed && i < sizeof fields / sizeof fields[0]; i++)
        failed = append(paced, fields[i]) < 0;
    failed = failed || flush_at(store, paced, self->paced_limit) < 0;
    Py_XDECREF(paced);
    Py_XDECREF(store);
    Py_XDECREF(lag_from_s);
    Py_XDECREF(interval_ms);
    Py_DECREF(intended);
    return failed ? -1 : 1;
}

/* A success's own queue: 1 queued, 0 not (the general path counts it), -1 error. */
static int
queue_success(FireObject *self, PyObject *kwargs, PyObject *start_time)
{
    PyObject *flag = PyObject_GetAttr(self->plugin, s_expect_marks);
    if (flag == NULL)
        return -1;
    int expect = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    if (expect < 0)
        return -1;
    if (expect) {  /* a paced task's first request carries its intended start on the greenlet */
        PyObject *current = PyObject_CallNoArgs(self->getcurrent);
        if (current == NULL)
            return -1;
        PyObject *attrs = PyObject_GetAttr(current, s_dict);
        Py_DECREF(current);
        if (attrs == NULL)
            return -1;
        PyObject *mark;
        if (PyDict_Check(attrs)) {
            mark = PyDict_GetItemWithError(attrs, self->mark_attr);
            if (mark == NULL && PyErr_Occurred()) {
                Py_DECREF(attrs);
                return -1;
            }
            mark = Py_NewRef(mark != NULL ? mark : Py_None);
        } else {
            mark = PyObject_CallMethodOneArg(attrs, s_get, self->mark_attr);
        }
        Py_DECREF(attrs);
        if (mark == NULL)
            return -1;
        if (mark != Py_None) {
            int queued = queue_scheduled(self, kwargs, mark, start_time);
            Py_DECREF(mark);
            return queued;
        }
        Py_DECREF(mark);
    }
    if (!is_epoch_float(start_time))
        return 0;
    PyObject *response_time = PyDict_GetItemWithError(kwargs, s_response_time);
    if (response_time == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!PyFloat_CheckExact(response_time))  /* an int, numpy's, None ...: the general path converts */
        return 0;
    PyObject *request_type = PyDict_GetItemWithError(kwargs, s_request_type);
    if (request_type == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *name = PyDict_GetItemWithError(kwargs, s_name);
    if (name == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *store = PyObject_GetAttr(self->plugin, s_store);
    if (store == NULL)
        return -1;
    PyObject *values = PyObject_GetAttr(store, s_quick_ms);
    if (values == NULL) {
        Py_DECREF(store);
        return -1;
    }
    PyObject *quick = PyObject_GetAttr(store, s_quick);
    int failed = quick == NULL;
    /* the two numbers, then the two names: the flush reads them pairwise side by side */
    if (!failed) {
        PyObject *done = PyObject_CallMethodOneArg(values, s_append, response_time);
        failed = done == NULL;
        Py_XDECREF(done);
        if (!failed) {
            done = PyObject_CallMethodOneArg(values, s_append, start_time);
            failed = done == NULL;
            Py_XDECREF(done);
        }
        failed = failed || append(quick, request_type) < 0 || append(quick, name) < 0;
    }
    failed = failed || flush_at(store, quick, self->limit) < 0;
    Py_XDECREF(quick);
    Py_DECREF(values);
    Py_DECREF(store);
    return failed ? -1 : 1;
}

/* The plugin's count of one request: 0 done, -1 error. */
static int
count(FireObject *self, PyObject *kwargs)
{
    PyObject *exception = PyDict_GetItemWithError(kwargs, s_exception);
    if (exception == NULL && PyErr_Occurred())
        return -1;
    PyObject *context = PyDict_GetItemWithError(kwargs, s_context);
    if (context == NULL && PyErr_Occurred())
        return -1;
    PyObject *start_time = PyDict_GetItemWithError(kwargs, s_start_time);
    if (start_time == NULL && PyErr_Occurred())
        return -1;
    int queued = 0;
    if (exception == NULL || exception == Py_None) {
        int has_context = 0;
        if (context != NULL && context != Py_None) {
            has_context = PyDict_CheckExact(context) ? PyDict_GET_SIZE(context) != 0 : PyObject_IsTrue(context);
            if (has_context < 0)
                return -1;
        }
        if (!has_context) {
            queued = queue_success(self, kwargs, start_time);
            if (queued < 0)
                return -1;
        }
    }
    if (queued)
        return 0;
    PyObject *request_type = required(kwargs, s_request_type), *name, *response_time;
    if (request_type == NULL || (name = required(kwargs, s_name)) == NULL
            || (response_time = required(kwargs, s_response_time)) == NULL)
        return -1;
    PyObject *args[] = {self->plugin, request_type, name, response_time,
                        context != NULL ? context : Py_None, exception != NULL ? exception : Py_None,
                        start_time != NULL ? start_time : Py_None};
    PyObject *done = PyObject_VectorcallMethod(s_count_other_request, args, 7 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    return 0;
}

/* One listener, called as handler(**kwargs): a callable that takes the keywords as a dict gets a
   copy of its own (Python's call syntax copies them), the others unpack them. 0 done, -1 error. */
static int
call_listener(PyObject *handler, PyObject *kwargs)
{
    PyObject *result;
    if (PyVectorcall_Function(handler) != NULL) {
        result = PyObject_Call(handler, empty_tuple, kwargs);
    } else {
        PyObject *own = PyDict_Copy(kwargs);
        if (own == NULL)
            return -1;
        result = PyObject_Call(handler, empty_tuple, own);
        Py_DECREF(own);
    }
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* Locust 2.47's EventHook.fire over a copy of the hook's listeners: -1 when an error passes on. */
static int
run_listeners(FireObject *self, PyObject *kwargs, int reverse)
{
    PyObject *handlers = PyObject_GetAttr(self->hook, s_handlers);
    if (handlers == NULL)
        return -1;
    PyObject *copy;
    if (PyList_CheckExact(handlers)) {
        copy = PyList_GetSlice(handlers, 0, PyList_GET_SIZE(handlers));
        if (copy != NULL && reverse && PyList_Reverse(copy) < 0)
            Py_CLEAR(copy);
    } else {
        copy = reverse ? PyObject_GetItem(handlers, reversed_slice) : PyObject_CallMethodNoArgs(handlers, s_copy);
    }
    Py_DECREF(handlers);
    if (copy == NULL)
        return -1;
    int failed = 0;
    if (PyList_CheckExact(copy)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(copy); i++) {
            PyObject *handler = PyList_GET_ITEM(copy, i);
            Py_INCREF(handler);
            int done = call_listener(handler, kwargs);
            Py_DECREF(handler);
            if (done < 0 && handle_error(self) < 0) {
                failed = 1;
                break;
            }
        }
    } else {
        PyObject *it = PyObject_GetIter(copy), *handler;
        failed = it == NULL;
        while (!failed && (handler = PyIter_Next(it)) != NULL) {
            int done = call_listener(handler, kwargs);
            Py_DECREF(handler);
            failed = done < 0 && handle_error(self) < 0;
        }
        failed = failed || PyErr_Occurred() != NULL;
        Py_XDECREF(it);
    }
    Py_DECREF(copy);
    return failed ? -1 : 0;
}

static PyObject *
fire_call(FireObject *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_Format(PyExc_TypeError, "fire() takes 0 positional arguments but %zd were given", PyTuple_GET_SIZE(args));
        return NULL;
    }
    PyObject *own = NULL;  /* the keywords without ``reverse``, when it was passed */
    int reverse = 0;
    if (kwargs == NULL) {
        kwargs = own = PyDict_New();
        if (own == NULL)
            return NULL;
    } else {
        PyObject *flag = PyDict_GetItemWithError(kwargs, s_reverse);
        if (flag == NULL && PyErr_Occurred())
            return NULL;
        if (flag != NULL) {
            reverse = PyObject_IsTrue(flag);
            if (reverse < 0 || (own = PyDict_Copy(kwargs)) == NULL || PyDict_DelItem(own, s_reverse) < 0) {
                Py_XDECREF(own);
                return NULL;
            }
            kwargs = own;
        }
    }
    int failed = count(self, kwargs) < 0 && handle_error(self) < 0;
    failed = failed || run_listeners(self, kwargs, reverse) < 0;
    Py_XDECREF(own);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
fire_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *keywords[] = {"hook", "plugin", "passed_on", "report", "getcurrent", "mark_attr", "limit",
                               "paced_limit", NULL};
    PyObject *hook, *plugin, *passed_on, *report, *getcurrent, *mark_attr;
    Py_ssize_t limit, paced_limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!OOUnn:Fire", keywords, &hook, &plugin, &PyTuple_Type,
                                     &passed_on, &report, &getcurrent, &mark_attr, &limit, &paced_limit))
        return NULL;
    FireObject *self = (FireObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->hook = Py_NewRef(hook);
    self->plugin = Py_NewRef(plugin);
    self->passed_on = Py_NewRef(passed_on);
    self->report = Py_NewRef(report);
    self->getcurrent = Py_NewRef(getcurrent);
    self->mark_attr = Py_NewRef(mark_attr);
    self->limit = limit;
    self->paced_limit = paced_limit;
    return (PyObject *)self;
}

static int
fire_traverse(FireObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->hook);
    Py_VISIT(self->plugin);
    Py_VISIT(self->passed_on);
    Py_VISIT(self->report);
    Py_VISIT(self->getcurrent);
    Py_VISIT(self->mark_attr);
    return 0;
}

static int
fire_clear(FireObject *self)
{
    Py_CLEAR(self->hook);
    Py_CLEAR(self->plugin);
    Py_CLEAR(self->passed_on);
    Py_CLEAR(self->report);
    Py_CLEAR(self->getcurrent);
    Py_CLEAR(self->mark_attr);
    return 0;
}

static void
fire_dealloc(FireObject *self)
{
    PyObject_GC_UnTrack(self);
    fire_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject FireType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "reliability._dispatch.Fire",
    .tp_doc = PyDoc_STR("Fire(hook, plugin, passed_on, report, getcurrent, mark_attr, limit, paced_limit): the request "
                        "event's fire, counting each request for the plugin, then calling hook's listeners."),
    .tp_basicsize = sizeof(FireObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = fire_new,
    .tp_call = (ternaryfunc)fire_call,
    .tp_traverse = (traverseproc)fire_traverse,
    .tp_clear = (inquiry)fire_clear,
    .tp_dealloc = (destructor)fire_dealloc,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "reliability._dispatch",
    PyDoc_STR("The request event's dispatch, compiled (see reliability.request_dispatch)."), -1, NULL, NULL, NULL, NULL, NULL,
};

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__dispatch(void)
{
    if (intern(&s_exception, "exception") < 0 || intern(&s_context, "context") < 0
            || intern(&s_start_time, "start_time") < 0 || intern(&s_request_type, "request_type") < 0
            || intern(&s_name, "name") < 0 || intern(&s_response_time, "response_time") < 0
            || intern(&s_reverse, "reverse") < 0 || intern(&s_store, "store") < 0
            || intern(&s_quick, "quick") < 0 || intern(&s_quick_ms, "quick_ms") < 0
            || intern(&s_append, "append") < 0 || intern(&s_flush, "flush") < 0
            || intern(&s_expect_marks, "_expect_marks") < 0 || intern(&s_start_s, "start_s") < 0
            || intern(&s_interval_ms, "interval_ms") < 0 || intern(&s_lag_from_s, "lag_from_s") < 0
            || intern(&s_paced, "paced") < 0
            || intern(&s_count_other_request, "count_other_request") < 0
            || intern(&s_handlers, "_handlers") < 0 || intern(&s_dict, "__dict__") < 0
            || intern(&s_copy, "copy") < 0 || intern(&s_get, "get") < 0)
        return NULL;
    if ((empty_tuple = PyTuple_New(0)) == NULL)
        return NULL;
    PyObject *minus_one = PyLong_FromLong(-1);
    if (minus_one == NULL)
        return NULL;
    reversed_slice = PySlice_New(Py_None, Py_None, minus_one);
    Py_DECREF(minus_one);
    if (reversed_slice == NULL || PyType_Ready(&FireType) < 0)
        return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL)
        return NULL;
    if (PyModule_AddObjectRef(mod, "Fire", (PyObject *)&FireType) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
