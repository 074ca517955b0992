/* _pq: the guest end of pubfn's host-call ABI, compiled into the interpreter as a built-in
 * module. It only moves bytes: every decision (limits, validation, meaning of an operation) is
 * the host's. See guest-sdk/ABI.md. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "pq_abi.h"

__attribute__((import_module("pq"), import_name("host_call")))
int32_t pq_host_call(int32_t op, int32_t arg_ptr, int32_t arg_len, int32_t result_len_ptr);

__attribute__((import_module("pq"), import_name("take_result")))
int32_t pq_take_result(int32_t ptr, int32_t len);

static PyObject *HostError; /* _pq.HostError(code, message) */

/* Copies the pending host result into a new bytes object. */
static PyObject *take_pending(uint32_t len) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
    if (out == NULL) {
        return NULL;
    }
    int32_t rc = pq_take_result((int32_t)(uintptr_t)PyBytes_AS_STRING(out), (int32_t)len);
    if (rc != PQ_OK) {
        Py_DECREF(out);
        PyErr_Format(HostError, "take_result failed with code %d", (int)rc);
        return NULL;
    }
    return out;
}

PyDoc_STRVAR(call_doc,
"call(op, data=b'') -> bytes\n\n"
"Runs host operation `op` with argument bytes `data`; returns the result bytes or raises\n"
"HostError(code, message).");

static PyObject *pq_call(PyObject *self, PyObject *args) {
    int op;
    Py_buffer arg = {0};
    if (!PyArg_ParseTuple(args, "i|y*:call", &op, &arg)) {
        return NULL;
    }
    uint32_t result_len = 0;
    int32_t rc = pq_host_call(op, (int32_t)(uintptr_t)arg.buf, (int32_t)arg.len,
                              (int32_t)(uintptr_t)&result_len);
    PyBuffer_Release(&arg);
    PyObject *result = take_pending(result_len);
    if (rc == PQ_OK) {
        return result;
    }
    PyObject *message;
    if (result == NULL) {
        /* The error message itself could not be fetched: still report the host's code. */
        PyErr_Clear();
        message = PyUnicode_FromString("");
    } else {
        message = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(result), PyBytes_GET_SIZE(result),
                                       "replace");
        Py_DECREF(result);
    }
    if (message == NULL) {
        return NULL;
    }
    PyObject *exc_args = Py_BuildValue("(iN)", (int)rc, message);
    if (exc_args != NULL) {
        PyErr_SetObject(HostError, exc_args);
        Py_DECREF(exc_args);
    }
    return NULL;
}

PyDoc_STRVAR(raw_host_call_doc,
"raw_host_call(op, arg_ptr, arg_len, result_len_ptr) -> int\n\n"
"The pq.host_call import with unchecked integers, for tests of the host's validation.");

static PyObject *pq_raw_host_call(PyObject *self, PyObject *args) {
    long long op, ptr, len, result_len_ptr;
    if (!PyArg_ParseTuple(args, "LLLL:raw_host_call", &op, &ptr, &len, &result_len_ptr)) {
        return NULL;
    }
    return PyLong_FromLong(pq_host_call((int32_t)op, (int32_t)ptr, (int32_t)len,
                                        (int32_t)result_len_ptr));
}

PyDoc_STRVAR(raw_take_result_doc,
"raw_take_result(ptr, len) -> int\n\n"
"The pq.take_result import with unchecked integers, for tests of the host's validation.");

static PyObject *pq_raw_take_result(PyObject *self, PyObject *args) {
    long long ptr, len;
    if (!PyArg_ParseTuple(args, "LL:raw_take_result", &ptr, &len)) {
        return NULL;
    }
    return PyLong_FromLong(pq_take_result((int32_t)ptr, (int32_t)len));
}

static PyMethodDef pq_methods[] = {
    {"call", pq_call, METH_VARARGS, call_doc},
    {"raw_host_call", pq_raw_host_call, METH_VARARGS, raw_host_call_doc},
    {"raw_take_result", pq_raw_take_result, METH_VARARGS, raw_take_result_doc},
    {NULL, NULL, 0, NULL},
};

static int pq_exec(PyObject *m) {
    HostError = PyErr_NewExceptionWithDoc("_pq.HostError",
                                          "A host call failed: args are (code, message).",
                                          NULL, NULL);
    if (HostError == NULL || PyModule_AddObjectRef(m, "HostError", HostError) < 0) {
        return -1;
    }
#define ADD_INT(name) if (PyModule_AddIntConstant(m, #name, name) < 0) return -1
    ADD_INT(PQ_ABI_VERSION);
    ADD_INT(PQ_OP_REQUEST_HEAD);
    ADD_INT(PQ_OP_REQUEST_BODY);
    ADD_INT(PQ_OP_SCRIPT_SOURCE);
    ADD_INT(PQ_OP_RESPONSE_HEAD);
    ADD_INT(PQ_OP_RESPONSE_BODY);
    ADD_INT(PQ_OP_ERROR_REPORT);
    ADD_INT(PQ_OP_SCRIPT_CODE);
    ADD_INT(PQ_OP_SCRIPT_CODE_OFFER);
    ADD_INT(PQ_OP_RESPONSE_BODY_ROWS);
    ADD_INT(PQ_OP_DB);
    ADD_INT(PQ_OP_SECRET);
    ADD_INT(PQ_OP_STATE_GET);
    ADD_INT(PQ_OP_STATE_SET);
    ADD_INT(PQ_OP_HTTP);
    ADD_INT(PQ_OP_DB_ROWS);
    ADD_INT(PQ_OK);
    ADD_INT(PQ_DRIVER_OK);
    ADD_INT(PQ_DRIVER_REPORTED);
    ADD_INT(PQ_E_FAULT);
    ADD_INT(PQ_E_TOO_LARGE);
    ADD_INT(PQ_E_NO_OP);
    ADD_INT(PQ_E_INVALID);
    ADD_INT(PQ_E_UNAVAILABLE);
    ADD_INT(PQ_E_NO_RESULT);
    ADD_INT(PQ_E_HOST);
    ADD_INT(PQ_E_DENIED);
    ADD_INT(PQ_E_STATE);
    ADD_INT(PQ_E_SQL);
    ADD_INT(PQ_E_DB_UNAVAILABLE);
    ADD_INT(PQ_E_NOT_FOUND);
    ADD_INT(PQ_E_NETWORK);
#undef ADD_INT
    return 0;
}

static PyModuleDef_Slot pq_slots[] = {
    {Py_mod_exec, pq_exec},
    {0, NULL},
};

static struct PyModuleDef pq_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_pq",
    .m_doc = "Guest end of pubfn's host-call ABI (see guest-sdk/ABI.md).",
    .m_size = 0,
    .m_methods = pq_methods,
    .m_slots = pq_slots,
};

PyMODINIT_FUNC PyInit__pq(void) { return PyModuleDef_Init(&pq_module); }
