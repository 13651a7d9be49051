//! The browser's WebGPU device for the core module's labs (optimal transport, alignment): asked
//! for once, shared, forgotten after a failure.

use wasm_bindgen::prelude::*;

use super::Options;

/// The browser's WebGPU device, acquired on first use and shared by every lab (the wgpu
/// `repeated_compute` pattern); each lab's pipelines are built on it once, when first needed.
pub(crate) struct WebGpu {
    pub(crate) gpu: crate::gpu::Gpu,
    sinkhorn: std::cell::OnceCell<crate::gpu::sinkhorn::SinkhornKernels>,
    knn: std::cell::OnceCell<crate::gpu::knn::KnnKernels>,
    multi: std::cell::OnceCell<crate::gpu::multi::MultiKernels>,
}

impl WebGpu {
    pub(crate) fn sinkhorn(&self) -> &crate::gpu::sinkhorn::SinkhornKernels {
        self.sinkhorn
            .get_or_init(|| crate::gpu::sinkhorn::SinkhornKernels::new(&self.gpu))
    }

    pub(crate) fn multi(&self) -> &crate::gpu::multi::MultiKernels {
        self.multi
            .get_or_init(|| crate::gpu::multi::MultiKernels::new(&self.gpu))
    }

    pub(crate) fn knn(&self) -> &crate::gpu::knn::KnnKernels {
        self.knn
            .get_or_init(|| crate::gpu::knn::KnnKernels::new(&self.gpu))
    }
}

thread_local! {
    /// `Some(Err(why))` remembers that there is no device, and why.
    static WEBGPU: std::cell::RefCell<Option<Result<std::rc::Rc<WebGpu>, String>>> =
        const { std::cell::RefCell::new(None) };
}

/// The shared device, or why there is none (the same sentence every time).
pub(crate) async fn webgpu() -> Result<std::rc::Rc<WebGpu>, String> {
    if let Some(known) = WEBGPU.with(|g| g.borrow().clone()) {
        return known;
    }
    match crate::gpu::Gpu::request().await {
        Ok(gpu) => {
            let shared = std::rc::Rc::new(WebGpu {
                gpu,
                sinkhorn: std::cell::OnceCell::new(),
                knn: std::cell::OnceCell::new(),
                multi: std::cell::OnceCell::new(),
            });
            WEBGPU.with(|g| *g.borrow_mut() = Some(Ok(shared.clone())));
            Ok(shared)
        }
        Err(e) => {
            let why = e.to_string();
            WEBGPU.with(|g| *g.borrow_mut() = Some(Err(why.clone())));
            Err(why)
        }
    }
}

/// Drops a device that failed, so the next call asks for a new one.
pub(crate) fn forget_webgpu() {
    WEBGPU.with(|g| *g.borrow_mut() = None);
}

/// `options.backend`: "auto" (default), "gpu" or "cpu"; anything else is an error naming it.
pub(crate) fn backend_option(options: &Options) -> Result<String, JsError> {
    let backend = options
        .get::<String>("backend")?
        .unwrap_or_else(|| "auto".into());
    if !matches!(backend.as_str(), "auto" | "gpu" | "cpu") {
        return Err(JsError::new(&format!(
            "options.backend is {backend:?}: expected \"auto\", \"gpu\" or \"cpu\""
        )));
    }
    Ok(backend)
}
