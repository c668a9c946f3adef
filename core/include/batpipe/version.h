/* batpipe — version numbers of the library and of the plugin ABI.
 *
 * The ABI version is what plugins are checked against when they are loaded:
 *  - a plugin built for another major version is rejected;
 *  - a plugin built against a newer minor version than the host is rejected
 *    (it may use fields or ops this host does not know);
 *  - a plugin built against an older minor version is accepted.
 * Structs that cross the ABI start with `struct_size`, so a newer minor can
 * append fields; readers only touch fields inside the size they were given.
 *
 * History: 1.0 — first release. 1.1 — training ops appended to
 * bp_backend_impl (backward passes, batchnorm, max pooling, add_rows, AdamW)
 * and the trainable stage extension (trainable.h). */
#ifndef BATPIPE_VERSION_H
#define BATPIPE_VERSION_H

#define BP_ABI_MAJOR 1
#define BP_ABI_MINOR 1

#define BP_VERSION_MAJOR 0
#define BP_VERSION_MINOR 1
#define BP_VERSION_PATCH 0
#define BP_VERSION_STRING "0.1.0"

#if defined(__GNUC__) || defined(__clang__)
#define BP_API __attribute__((visibility("default")))
#define BP_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define BP_API
#define BP_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
#define BP_EXTERN_C_BEGIN extern "C" {
#define BP_EXTERN_C_END }
#else
#define BP_EXTERN_C_BEGIN
#define BP_EXTERN_C_END
#endif

#endif /* BATPIPE_VERSION_H */
