/* The reactor driver: pubfn's entry points into CPython.
 *
 * `wizer-initialize` starts the interpreter and imports what every handler is likely to need;
 * wasmtime-wizer snapshots the memory right after it, so each instance starts with all of that
 * done. The host then calls pq_compile, pq_load and pq_handle, which hand over to the Python
 * half of the driver (guest-sdk/pq/_driver.py). Exports return PQ_DRIVER_OK on success,
 * PQ_DRIVER_REPORTED when the guest reported an error through PQ_OP_ERROR_REPORT, and
 * PQ_DRIVER_BROKEN when the driver itself is broken (for example because a handler replaced
 * its internals). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "../guest-sdk/_pq/pq_abi.h"

PyMODINIT_FUNC PyInit__pq(void);

/* CPython internals used once, at snapshot time (see immortalize_snapshot). */
extern void _Py_SetImmortal(PyObject *op);

/* Where the host preopens the runtime's lib/ directory (read-only); it must match at snapshot
 * time and at run time. */
#define STDLIB_DIR L"/usr/local/lib/python3.13"
/* The pure-Python packages scripts/build-python-runtime bundles (requests and what it imports),
 * searched after the stdlib, so that none of them can shadow a stdlib module. */
#define SITE_PACKAGES_DIR L"/usr/local/lib/python3.13/site-packages"

static PyObject *fn_compile, *fn_load, *fn_handle;

/* An explicit stack for immortalize_snapshot's walk: object graphs are deeper than the C stack. */
static PyObject **walk_stack;
static size_t walk_len, walk_cap;

static int walk_push(PyObject *op, void *unused) {
    (void)unused;
    if (op == NULL || _Py_IsImmortal(op)) {
        return 0;
    }
    _Py_SetImmortal(op); /* marks it first, so it is pushed once */
    if (walk_len == walk_cap) {
        size_t cap = walk_cap ? walk_cap * 2 : 4096;
        PyObject **grown = realloc(walk_stack, cap * sizeof(PyObject *));
        if (grown == NULL) {
            return -1;
        }
        walk_stack = grown;
        walk_cap = cap;
    }
    walk_stack[walk_len++] = op;
    return 0;
}

/* Makes every object alive at snapshot time immortal (and untracked by the collector).
 *
 * Each instance maps the snapshot copy-on-write, and CPython writes a reference count into
 * every object it touches: without this, a request copies in a page for nearly every object
 * it reads. Immortal objects are never written by reference counting, and the collector never
 * walks them. They are never freed either, which is right: they are the snapshot. */
static int immortalize_snapshot(void) {
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *collected = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    Py_XDECREF(collected);
    PyObject *objects = gc ? PyObject_CallMethod(gc, "get_objects", NULL) : NULL;
    Py_XDECREF(gc);
    if (objects == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(objects); i++) {
        rc = walk_push(PyList_GET_ITEM(objects, i), NULL);
        while (rc == 0 && walk_len > 0) {
            PyObject *op = walk_stack[--walk_len];
            traverseproc traverse = Py_TYPE(op)->tp_traverse;
            if (PyObject_IS_GC(op) && traverse != NULL) {
                rc = traverse(op, walk_push, NULL);
            }
            if (rc == 0) {
                rc = walk_push((PyObject *)Py_TYPE(op), NULL);
            }
        }
    }
    Py_DECREF(objects);
    free(walk_stack);
    walk_stack = NULL;
    walk_len = walk_cap = 0;
    return rc;
}

static void fatal(const char *what, PyStatus status) {
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
    fprintf(stderr, "pubfn driver: %s failed\n", what);
    __builtin_trap();
}

__attribute__((export_name("wizer-initialize"))) void pq_wizer_initialize(void) {
    if (PyImport_AppendInittab("_pq", PyInit__pq) < 0) {
        fatal("registering _pq", PyStatus_Ok());
    }

    PyPreConfig preconfig;
    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.utf8_mode = 1;
    PyStatus status = Py_PreInitialize(&preconfig);
    if (PyStatus_Exception(status)) {
        fatal("Py_PreInitialize", status);
    }

    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;      /* no `site`: the path below is all there is (no .pth files) */
    config.write_bytecode = 0;   /* the stdlib is read-only and precompiled */
    config.buffered_stdio = 0;   /* output reaches the host's bounded capture as it is written */
    config.install_signal_handlers = 0;
    config.pathconfig_warnings = 0;
    config.module_search_paths_set = 1;
    status = PyWideStringList_Append(&config.module_search_paths, STDLIB_DIR);
    if (!PyStatus_Exception(status)) {
        status = PyWideStringList_Append(&config.module_search_paths, SITE_PACKAGES_DIR);
    }
    if (!PyStatus_Exception(status)) {
        status = PyConfig_SetString(&config, &config.program_name, L"pubfn-python");
    }
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        fatal("Py_InitializeFromConfig", status);
    }

    PyObject *driver = PyImport_ImportModule("pq._driver");
    if (driver == NULL) {
        PyErr_Print();
        fatal("importing pq._driver", PyStatus_Ok());
    }
    fn_compile = PyObject_GetAttrString(driver, "compile_script");
    fn_load = PyObject_GetAttrString(driver, "load_script");
    fn_handle = PyObject_GetAttrString(driver, "handle_request");
    Py_DECREF(driver);
    if (fn_compile == NULL || fn_load == NULL || fn_handle == NULL) {
        PyErr_Print();
        fatal("finding the driver's entry points", PyStatus_Ok());
    }
    if (immortalize_snapshot() < 0) {
        PyErr_Print();
        fatal("immortalizing the snapshot", PyStatus_Ok());
    }
}

static int32_t call_driver(PyObject *fn) {
    if (fn == NULL) {
        /* not initialised: the host runs only snapshots, so this is a broken build */
        return PQ_DRIVER_BROKEN;
    }
    PyObject *result = PyObject_CallNoArgs(fn);
    if (result == NULL) {
        PyErr_Clear();
        return PQ_DRIVER_BROKEN;
    }
    long code = PyLong_Check(result) ? PyLong_AsLong(result) : PQ_DRIVER_BROKEN;
    Py_DECREF(result);
    PyErr_Clear();
    return (code == PQ_DRIVER_OK || code == PQ_DRIVER_REPORTED) ? (int32_t)code : PQ_DRIVER_BROKEN;
}

__attribute__((export_name("pq_abi_version"))) int32_t pq_abi_version(void) {
    return PQ_ABI_VERSION;
}

/* Compiles the script (PQ_OP_SCRIPT_SOURCE) without running it: the deploy-time syntax check. */
__attribute__((export_name("pq_compile"))) int32_t pq_compile(void) {
    return call_driver(fn_compile);
}

/* Compiles and runs the script's module-level code, and finds its handler. */
__attribute__((export_name("pq_load"))) int32_t pq_load(void) { return call_driver(fn_load); }

/* Runs the loaded handler on the current request and sends its response to the host. */
__attribute__((export_name("pq_handle"))) int32_t pq_handle(void) {
    return call_driver(fn_handle);
}
