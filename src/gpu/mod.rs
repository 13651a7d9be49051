//! The GPU path: the only code that knows wgpu. WGSL shaders sit beside their module
//! (`include_wgsl!`), each with a header naming its bindings.
//!
//! As in wgpu's `hello_compute`/`repeated_compute` examples, *getting* a device is separate
//! from *running* on it: [`Gpu::request`] finds an adapter and opens a device once; solvers
//! take a `&Gpu`, so tests (and the browser) can hand them one they made. Every GPU object
//! is labelled. Results have the same types as the CPU core's (`crate::core`), and the tests
//! compare the two (`tests/gpu_sinkhorn.rs`).
//!
//! Natively wgpu uses Vulkan or OpenGL ES; on a machine without a GPU, Mesa's lavapipe
//! (Debian `mesa-vulkan-drivers`) is a Vulkan adapter of device type `Cpu` — correct and
//! slow, which is what the tests need. [`Gpu::is_software`] tells callers choosing a
//! backend automatically that the CPU path will be faster.

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
    /// No adapter (no GPU, no software rasteriser, or no backend compiled in).
    #[error("no GPU adapter is available: {0}")]
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
    /// The GPU reported an error while solving (validation, out of memory, device lost).
    #[error("the GPU failed while solving: {0}")]
    Failed(String),
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

/// An open device and its queue.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
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
            return Err(GpuError::NoAdapter(
                "this browser offers no WebGPU adapter (navigator.gpu is missing or gave none)"
                    .into(),
            ));
        }
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
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
        Ok(Gpu {
            device,
            queue,
            adapter: info,
            limits,
        })
    }

    /// [`Gpu::request`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn request_blocking() -> Result<Gpu, GpuError> {
        pollster::block_on(Gpu::request())
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
