/* Element types shared by tensors and collectives. */
#ifndef LIGHTOS_DTYPE_H
#define LIGHTOS_DTYPE_H

#include <stddef.h>
#include "lightos/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lightos_dtype {
  LIGHTOS_DTYPE_F32 = 1,
  LIGHTOS_DTYPE_F64 = 2,
  LIGHTOS_DTYPE_F16 = 3,
  LIGHTOS_DTYPE_BF16 = 4,
  LIGHTOS_DTYPE_I32 = 5,
  LIGHTOS_DTYPE_I64 = 6,
  LIGHTOS_DTYPE_U8 = 7,
  LIGHTOS_DTYPE_BOOL = 8
} lightos_dtype_t;

/* Bytes per element; 0 for an unknown dtype. */
LIGHTOS_API size_t lightos_dtype_size(lightos_dtype_t dtype);
/* "f32", "bf16" ...; "unknown" for an unknown dtype. */
LIGHTOS_API const char* lightos_dtype_name(lightos_dtype_t dtype);

#ifdef __cplusplus
}
#endif
#endif
