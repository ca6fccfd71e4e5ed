typedef struct { float x, y; } pt_t;
inline float sq(float v) { return v * v; }
__kernel void proto(__global pt_t* p);
__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void proto(__global pt_t* p) { p[0].x = sq(p[0].y); }
__kernel void scalars(char a, uchar b, short c, unsigned short d, int e, unsigned f,
                      long g, unsigned long h, float i, double j, half k, size_t l,
                      bool m, float4 n, __constant int* o) { }
__kernel void none(void) { }
