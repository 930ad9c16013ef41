/* C API of the SentencePiece plugin (libwan_spm.so).
 * Debian's libsentencepiece bundles a private protobuf-lite whose exported symbols clash with the
 * libprotobuf that LibTorch loads, so the engine never links it: it dlopen()s this plugin with
 * RTLD_LOCAL | RTLD_DEEPBIND, which keeps the two protobufs apart. Training runs in a separate helper
 * executable (wan-spm-train) instead: the trainer logs through std::cerr, and a DEEPBIND-loaded
 * library sees libstdc++'s own, never-constructed std::cerr when the executable holds a copy
 * relocation of it (a crash). */
#ifndef WAN_SPM_H
#define WAN_SPM_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Returns a handle, or NULL with a message in err. */
void* wan_spm_load(const char* model_proto, size_t size, char* err, size_t err_size);
void wan_spm_free(void* handle);
/* pad id (-1 if undefined), eos id, vocabulary size. */
void wan_spm_info(void* handle, int* pad_id, int* eos_id, int* vocab_size);
/* Encodes UTF-8 text. Returns the number of ids (may exceed capacity: call again with more room),
 * or -1 with a message in err. */
int wan_spm_encode(void* handle, const char* text, int* ids, int capacity, char* err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
