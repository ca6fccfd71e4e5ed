/* The seed's API example, checked: context on the best device, a buffer,
 * a kernel, and an allreduce over a one-rank communicator. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <lightos/lightos.h>

static const char* kSource =
    "__kernel void scale_add(__global float* x, float a, float b, uint n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < n) x[i] = a * x[i] + b;\n"
    "}\n";

static int fail(const char* what) {
  const lightos_error_info_t* e = lightos_last_error();
  fprintf(stderr, "seed_example: %s failed: %s: %s\n", what, lightos_status_string(e->status),
          e->message);
  return 1;
}

int main(void) {
  enum { N = 1 << 20 };
  const size_t size = N * sizeof(float);

  lightos_context_t ctx = lightos_create_context(LIGHTOS_DEVICE_ANY);
  if (!ctx) return fail("lightos_create_context");
  lightos_device_t dev;
  lightos_device_info_t info;
  lightos_context_get_device(ctx, &dev);
  lightos_device_get_info(dev, &info);
  printf("device: %s (%s, %s)\n", info.uri, info.name, info.backend_name);

  lightos_buffer_t buf = lightos_alloc(ctx, size);
  lightos_buffer_t sum = lightos_alloc(ctx, size);
  if (!buf || !sum) return fail("lightos_alloc");
  float* host = malloc(size);
  for (int i = 0; i < N; ++i) host[i] = (float)i;
  if (lightos_buffer_write(buf, 0, size, host)) return fail("lightos_buffer_write");

  lightos_program_t prog;
  lightos_kernel_t kernel;
  if (lightos_program_create(ctx, kSource, 0, &prog) || lightos_program_build(prog, NULL))
    return fail("lightos_program_build");
  if (lightos_kernel_create(prog, "scale_add", &kernel)) return fail("lightos_kernel_create");
  lightos_kernel_set_arg_buffer(kernel, 0, buf);
  lightos_kernel_set_arg_f32(kernel, 1, 2.0f);
  lightos_kernel_set_arg_f32(kernel, 2, 1.0f);
  lightos_kernel_set_arg_u32(kernel, 3, N);
  if (lightos_execute(kernel, N, 0)) return fail("lightos_execute");

  lightos_comm_t comm;
  if (lightos_comm_init_all(1, &ctx, &comm)) return fail("lightos_comm_init_all");
  if (lightos_allreduce(buf, sum, N, LIGHTOS_OP_SUM, comm)) return fail("lightos_allreduce");

  if (lightos_buffer_read(sum, 0, size, host)) return fail("lightos_buffer_read");
  int bad = 0;
  double total = 0;
  for (int i = 0; i < N; ++i) {
    float want = 2.0f * (float)i + 1.0f;
    if (host[i] != want && bad++ < 5)
      fprintf(stderr, "x[%d] = %g, expected %g\n", i, host[i], want);
    total += host[i];
  }
  printf("scale_add + allreduce over %d floats: %s (sum %.0f, expected %.0f)\n", N,
         bad ? "WRONG" : "correct", total, (double)N * (double)N);

  lightos_comm_destroy(comm);
  lightos_kernel_release(kernel);
  lightos_program_release(prog);
  lightos_buffer_release(buf);
  lightos_buffer_release(sum);
  lightos_context_release(ctx);
  free(host);
  return bad ? 1 : 0;
}
