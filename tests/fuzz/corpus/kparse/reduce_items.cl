#define WG 64
/* work-group reduction with item blocks */
kernel void reduce(global const float* in, global float* out, local float* tmp) {
  __local float extra[WG];
  LIGHTOS_ITEMS { tmp[get_local_id(0)] = in[get_global_id(0)]; }
  barrier(CLK_LOCAL_MEM_FENCE);
  LIGHTOS_ITEMS {
    if (get_local_id(0) != 0) continue;
    float s = 0.0f;
    for (int j = 0; j < WG; j++) s += tmp[j];
    out[get_group_id(0)] = s + extra[0];
  }
}
