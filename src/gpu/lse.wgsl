// A streaming log-sum-exp and a workgroup sum, shared by sinkhorn.wgsl and multi.wgsl:
// src/gpu/mod.rs `Shader` prepends this file to theirs (WGSL has no includes). No bindings.

// −∞ stands in as NEG: WGSL promises nothing about infinities.
const NEG: f32 = -3.0e38;

fn is_neg(v: f32) -> bool {
  return v <= -1.0e38;
}

// A streaming log-sum-exp: log(sum) + mx; sum = 0 means "nothing yet" (−∞).
struct Lse {
  mx: f32,
  sum: f32,
}

fn lse_push(l: ptr<function, Lse>, v: f32) {
  if ((*l).sum == 0.0) {
    (*l).mx = v;
    (*l).sum = 1.0;
  } else if (v > (*l).mx) {
    (*l).sum = (*l).sum * exp((*l).mx - v) + 1.0;
    (*l).mx = v;
  } else {
    (*l).sum += exp(v - (*l).mx);
  }
}

fn lse_merge(l: Lse, r: Lse) -> Lse {
  if (l.sum == 0.0) {
    return r;
  }
  if (r.sum == 0.0) {
    return l;
  }
  let mx = max(l.mx, r.mx);
  return Lse(mx, l.sum * exp(l.mx - mx) + r.sum * exp(r.mx - mx));
}

var<workgroup> partial: array<f32, 256>;

// The sum of every invocation's `s` over one 256-invocation workgroup (a tree in workgroup
// memory); every invocation must call it.
fn workgroup_sum(local: u32, s: f32) -> f32 {
  partial[local] = s;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride = stride / 2u) {
    if (local < stride) {
      partial[local] += partial[local + stride];
    }
    workgroupBarrier();
  }
  return partial[0];
}
