/* The wire between the pubfn host and its guest. guest-sdk/ABI.md is the prose description of
 * the same contract and src/host/abi.rs is its host end; all three change together, and any
 * incompatible change bumps PQ_ABI_VERSION (the host refuses a runtime it does not know). */
#ifndef PQ_ABI_H
#define PQ_ABI_H

#define PQ_ABI_VERSION 6

/* Operations of pq.host_call. */
#define PQ_OP_REQUEST_HEAD   1  /* -> JSON head of the current request */
#define PQ_OP_REQUEST_BODY   2  /* -> raw request body */
#define PQ_OP_SCRIPT_SOURCE  3  /* -> UTF-8 source of the handler script */
#define PQ_OP_RESPONSE_HEAD  4  /* JSON {"status", "headers"} -> nothing */
#define PQ_OP_RESPONSE_BODY  5  /* raw body -> nothing */
#define PQ_OP_ERROR_REPORT   6  /* JSON error report -> nothing */
#define PQ_OP_SCRIPT_CODE    7  /* -> the script's cached code object (marshal), or nothing */
#define PQ_OP_SCRIPT_CODE_OFFER 8 /* marshalled code object -> nothing */
#define PQ_OP_RESPONSE_BODY_ROWS 9 /* body parts, kept rows spliced in -> nothing */
#define PQ_OP_DB             16 /* JSON database call -> JSON result */
#define PQ_OP_SECRET         17 /* UTF-8 secret name -> UTF-8 value */
#define PQ_OP_STATE_GET      18 /* nothing -> the endpoint's JSON state */
#define PQ_OP_STATE_SET      19 /* JSON object -> nothing */
#define PQ_OP_HTTP           20 /* head JSON + body -> head JSON + body */
#define PQ_OP_DB_ROWS        21 /* u32 LE rows handle -> the raw fetch result */

/* What the driver's exports (pq_compile, pq_load, pq_handle) return to the host. */
#define PQ_DRIVER_OK        0 /* done */
#define PQ_DRIVER_REPORTED  1 /* the guest failed and said why through PQ_OP_ERROR_REPORT */
#define PQ_DRIVER_BROKEN    2 /* the driver itself failed (e.g. a handler replaced its internals) */

/* Status codes returned by host_call and take_result. */
#define PQ_OK            0
#define PQ_E_FAULT      -1 /* a pointer/length lies outside guest memory */
#define PQ_E_TOO_LARGE  -2 /* an argument exceeds its documented limit */
#define PQ_E_NO_OP      -3 /* unknown operation */
#define PQ_E_INVALID    -4 /* malformed argument */
#define PQ_E_UNAVAILABLE -5 /* the capability is not configured for this sandbox */
#define PQ_E_NO_RESULT  -6 /* take_result without a pending result of that length */
#define PQ_E_HOST       -7 /* the host failed; not the guest's fault */
#define PQ_E_DENIED     -8 /* the guest may not do this */
#define PQ_E_STATE      -9 /* call out of order (e.g. a second response) */
#define PQ_E_SQL        -10 /* PostgreSQL refused a statement: JSON {"sqlstate","message"} */
#define PQ_E_DB_UNAVAILABLE -11 /* the tenant's database cannot be reached */
#define PQ_E_NOT_FOUND  -12 /* no such thing (e.g. an unknown secret name) */
#define PQ_E_NETWORK    -13 /* the outbound request failed on the network: JSON {"reason","message"} */

#endif
