//! The GPU path: the only code that knows wgpu. WGSL shaders sit beside their module
//! (`include_str!`, joined by [`Shader`]), each with a header naming its bindings.
//!
//! As in wgpu's `hello_compute`/`repeated_compute` examples, *getting* a device is separate
//! from *running* on it: [`Gpu::request`] finds an adapter and opens a device once; solvers
//! take a `&Gpu`, so tests (and the browser) can hand them one they made. Every GPU object
//! is labelled. Results have the same types as the CPU core's (`crate::core`), and the tests
//! compare the two (`tests/gpu_sinkhorn.rs`, `tests/gpu_knn.rs`, `tests/gpu_index.rs`).
//!
//! Natively wgpu uses Vulkan or OpenGL ES; on a machine without a GPU, Mesa's lavapipe
//! (Debian `mesa-vulkan-drivers`) is a Vulkan adapter of device type `Cpu` — correct and
//! slow, which is what the tests need. [`Gpu::is_software`] tells callers choosing a
//! backend automatically that the CPU path will be faster.

pub mod gallery;
pub mod knn;
pub mod multi;
pub mod sinkhorn;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// What went wrong on the GPU side. Bad *input* is reported by the core's error types
/// before anything reaches the GPU.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    /// No adapter (no GPU, no software rasteriser, or no backend compiled in), in one
    /// sentence a reader can take as it is (a page shows it beside "CPU").
    #[error("{0}")]
    NoAdapter(String),
    /// The adapter would not open a device.
    #[error("the GPU adapter {adapter} refused a device: {detail}")]
    Device { adapter: String, detail: String },
    /// The problem exceeds what this device can hold or dispatch.
    #[error("{0}")]
    TooLarge(String),
    /// Reading results back failed (for example, the device was lost).
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
    /// The GPU reported an error while solving (validation, out of memory).
    #[error("the GPU failed while solving: {0}")]
    Failed(String),
    /// The device is gone (a driver reset, the GPU process crashed, `destroy()`): the caller
    /// drops this `Gpu`; a new one may work.
    #[error("the GPU device was lost ({0})")]
    Lost(String),
}

/// The adapter a [`Gpu`] runs on, for reports (`backend` in the CLI's JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    /// "vulkan", "gl", "webgpu", …
    pub backend: String,
    /// "discrete", "integrated", "virtual", "cpu" or "other".
    pub device_type: String,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.backend, self.device_type)
    }
}

/// Why there is no GPU in a browser (or Node) that has no WebGPU or gave no adapter.
pub const NO_WEBGPU: &str = "no WebGPU adapter is available in this browser";

/// Marks a device-lost record in [`Gpu`]'s fault slot (the rest is wgpu's reason).
const LOST_PREFIX: &str = "lost: ";

/// An open device and its queue.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    /// Held by each solve for its whole length ([`with_error_scopes`]): see there.
    one_solve_at_a_time: futures_util::lock::Mutex<()>,
    /// What the device reported outside any solve's error scopes: its loss, or an uncaptured
    /// error (wgpu's default handler would panic on one). The next solve fails with it.
    fault: Arc<Mutex<Option<String>>>,
    /// Tells this device from every other one requested in this process, for data kept on it
    /// between solves (`gallery.rs`): wgpu's device handles from two instances can compare
    /// equal.
    serial: u64,
}

fn summary(info: &wgpu::AdapterInfo) -> AdapterSummary {
    let device_type = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    };
    AdapterSummary {
        name: info.name.clone(),
        backend: info.backend.to_str().to_string(),
        device_type: device_type.to_string(),
    }
}

impl Gpu {
    /// Finds an adapter (high performance preferred) and opens a device with the adapter's
    /// own limits, so large problems fit where the hardware allows.
    pub async fn request() -> Result<Gpu, GpuError> {
        // In the browser, wgpu panics when there is no `navigator.gpu` to reach (Node, a
        // shared worker): ask first, and report "no adapter" instead.
        #[cfg(target_arch = "wasm32")]
        if !wgpu::util::is_browser_webgpu_supported().await {
            return Err(GpuError::NoAdapter(NO_WEBGPU.into()));
        }
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                // wgpu's reason is for developers; a browser user needs only the fact.
                GpuError::NoAdapter(if cfg!(target_arch = "wasm32") {
                    NO_WEBGPU.into()
                } else {
                    format!("no GPU adapter is available: {e}")
                })
            })?;
        let info = summary(&adapter.get_info());
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("latentlab device"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device {
                adapter: info.to_string(),
                detail: e.to_string(),
            })?;
        let fault = Arc::new(Mutex::new(None));
        let record = |fault: &Arc<Mutex<Option<String>>>| {
            let fault = fault.clone();
            move |what: String| {
                if let Ok(mut slot) = fault.lock() {
                    slot.get_or_insert(what);
                }
            }
        };
        let uncaptured = record(&fault);
        device.on_uncaptured_error(Arc::new(move |e| uncaptured(e.to_string())));
        let lost = record(&fault);
        device.set_device_lost_callback(move |reason, message| {
            lost(format!("{LOST_PREFIX}{reason:?}: {message}"))
        });
        Ok(Gpu {
            device,
            queue,
            adapter: info,
            limits,
            one_solve_at_a_time: futures_util::lock::Mutex::new(()),
            fault,
            serial: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        })
    }

    /// [`Gpu::request`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn request_blocking() -> Result<Gpu, GpuError> {
        pollster::block_on(Gpu::request())
    }

    /// The device's loss or an uncaptured error, once reported: every later solve fails
    /// with it (the caller drops this `Gpu` and asks for a new one).
    fn check_fault(&self) -> Result<(), GpuError> {
        match self.fault.lock().map(|slot| slot.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(what)) => Err(match what.strip_prefix(LOST_PREFIX) {
                Some(reason) => GpuError::Lost(reason.trim_end_matches('.').to_string()),
                None => GpuError::Failed(what),
            }),
            Err(_) => Err(GpuError::Failed(
                "the GPU's fault record was poisoned".into(),
            )),
        }
    }

    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// A software adapter (lavapipe, SwiftShader): correct, but slower than the CPU path.
    pub fn is_software(&self) -> bool {
        self.adapter.device_type == "cpu"
    }
}

/// A one-value channel for wgpu's callbacks (buffer mapping), awaited natively after a
/// blocking `poll` and in the browser by the event loop.
pub(crate) struct Oneshot<T> {
    state: Arc<Mutex<(Option<T>, Option<Waker>)>>,
}

impl<T> Oneshot<T> {
    pub(crate) fn new() -> (impl FnOnce(T) + Send + 'static, Oneshot<T>)
    where
        T: Send + 'static,
    {
        let state: Arc<Mutex<(Option<T>, Option<Waker>)>> = Arc::new(Mutex::new((None, None)));
        let sender = Arc::clone(&state);
        let send = move |value: T| {
            if let Ok(mut guard) = sender.lock() {
                guard.0 = Some(value);
                if let Some(waker) = guard.1.take() {
                    waker.wake();
                }
            }
        };
        (send, Oneshot { state })
    }
}

impl<T> Future for Oneshot<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let Ok(mut guard) = self.state.lock() else {
            // A poisoned lock means the sender panicked: nothing will arrive.
            return Poll::Ready(None);
        };
        match guard.0.take() {
            Some(value) => Poll::Ready(Some(value)),
            None => {
                guard.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// `lse.wgsl`: the streaming log-sum-exp that `sinkhorn.wgsl` and `multi.wgsl` share.
pub(crate) const LSE_WGSL: &str = include_str!("lse.wgsl");

/// One shader's module and pipeline layout: its bind group 0 holds a uniform at binding 0
/// and storage buffers at bindings 1, 2, … Each kernel module builds its pipelines through
/// this, so every object gets a label that names the shader.
pub(crate) struct Shader<'g> {
    device: &'g wgpu::Device,
    label: &'static str,
    module: wgpu::ShaderModule,
    pipeline_layout: wgpu::PipelineLayout,
}

impl<'g> Shader<'g> {
    /// The module from `sources` joined in order (WGSL has no includes, so shared helpers
    /// such as [`LSE_WGSL`] come first), and the bind group layout: `storage_read_only[b]`
    /// says whether binding `b + 1` is read-only.
    pub(crate) fn new(
        gpu: &'g Gpu,
        label: &'static str,
        sources: &[&str],
        storage_read_only: &[bool],
    ) -> (Shader<'g>, wgpu::BindGroupLayout) {
        let device = &gpu.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(sources.concat().into()),
        });
        let mut entries = vec![uniform_entry(0)];
        for (b, &read_only) in storage_read_only.iter().enumerate() {
            entries.push(storage_entry(b as u32 + 1, read_only));
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&format!("{label} bind group layout")),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&format!("{label} pipeline layout")),
            bind_group_layouts: &[Some(&layout)],
            ..Default::default()
        });
        let shader = Shader {
            device,
            label,
            module,
            pipeline_layout,
        };
        (shader, layout)
    }

    /// The compute pipeline of the entry point `entry`.
    pub(crate) fn pipeline(&self, entry: &str) -> wgpu::ComputePipeline {
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&format!("{} {entry}", self.label)),
                layout: Some(&self.pipeline_layout),
                module: &self.module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
    }
}

/// A compute-visible storage buffer binding of a bind group layout.
pub(crate) fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A compute-visible uniform buffer binding of a bind group layout.
pub(crate) fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A buffer holding `bytes` (at least 4 bytes long), writable by the queue. Buffers are
/// created unmapped and filled through the queue: wgpu's `create_buffer_init` panics when
/// the device is lost, and a lost device must be an error here.
pub(crate) fn filled_buffer(
    gpu: &Gpu,
    label: &str,
    bytes: &[u8],
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (bytes.len() as u64).max(4),
        usage: usage | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue.write_buffer(&buffer, 0, bytes);
    buffer
}

/// Checks that `bytes` fit one storage binding of this device.
pub(crate) fn check_binding(gpu: &Gpu, what: &str, bytes: u64) -> Result<(), GpuError> {
    let limit = gpu
        .limits
        .max_storage_buffer_binding_size
        .min(gpu.limits.max_buffer_size);
    if bytes > limit {
        return Err(GpuError::TooLarge(format!(
            "{what} needs {bytes} bytes, more than this GPU's largest storage buffer ({limit} bytes, {})",
            gpu.adapter
        )));
    }
    Ok(())
}

/// The iteration count at which a loop now at `n_iters` next checks its error (or stops at
/// `max`): the solvers record the iterations in between as one submission.
pub(crate) fn next_check(n_iters: usize, max: usize, is_check: impl Fn(usize) -> bool) -> usize {
    let mut end = n_iters;
    while end < max {
        end += 1;
        if is_check(end) {
            break;
        }
    }
    end
}

/// Records one compute pass with `record` and submits it.
pub(crate) fn submit(gpu: &Gpu, label: &str, record: impl FnOnce(&mut wgpu::ComputePass)) {
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        record(&mut pass);
    }
    gpu.queue.submit(Some(encoder.finish()));
}

/// Copies `count` values of type `T` from element `offset` of `src` back to the host.
pub(crate) async fn read_buffer<T: bytemuck::Pod>(
    gpu: &Gpu,
    src: &wgpu::Buffer,
    offset: usize,
    count: usize,
) -> Result<Vec<T>, GpuError> {
    let size = std::mem::size_of::<T>() as u64;
    let bytes = count as u64 * size;
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("readback copy"),
        });
    encoder.copy_buffer_to_buffer(src, offset as u64 * size, &staging, 0, bytes);
    gpu.queue.submit(Some(encoder.finish()));
    let slice = staging.slice(0..bytes);
    let (send, mapped) = Oneshot::new();
    slice.map_async(wgpu::MapMode::Read, move |result| {
        send(result.map_err(|e| e.to_string()))
    });
    // Natively nothing runs the callback until the device is polled; in the browser the
    // event loop does it while we wait.
    #[cfg(not(target_arch = "wasm32"))]
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    mapped
        .await
        .ok_or_else(|| GpuError::Readback("the mapping callback never ran".into()))?
        .map_err(GpuError::Readback)?;
    let values = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        bytemuck::cast_slice::<u8, T>(&view).to_vec()
    };
    staging.unmap();
    Ok(values)
}

/// Runs `work` inside out-of-memory and validation error scopes: a GPU error raised while
/// it ran voids its result (the numbers read back cannot be trusted) and is returned instead.
///
/// One `work` at a time per device. Error scopes are a stack on the device, and a solve
/// awaits its read-backs: two solves started together (a page firing a drag's worth of
/// requests) would interleave their pushes and pops, and wgpu panics on a mismatched pop —
/// in release wasm, an abort that kills the module. Waiting for the device instead keeps
/// every solve's errors its own (tests/js/webgpu-faults.test.mjs fires 24 at once).
pub(crate) async fn with_error_scopes<T, E>(
    gpu: &Gpu,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E>
where
    E: From<GpuError>,
{
    let _turn = gpu.one_solve_at_a_time.lock().await;
    gpu.check_fault()?;
    let out_of_memory = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let result = work.await;
    // Scopes pop in reverse order.
    let errors = [validation.pop().await, out_of_memory.pop().await];
    if let Some(e) = errors.into_iter().flatten().next() {
        return Err(GpuError::Failed(e.to_string()).into());
    }
    // A device lost mid-solve may have answered the read-backs with stale or zeroed memory.
    gpu.check_fault()?;
    result
}
