// Shared page chrome: the site header with navigation, and the footer.
// Pages call renderShell('home' | 'plans' | 'search' | 'ot' | 'align' | 'steer' | 'collapse' | 'tiny' | 'xrm' | 'sketch') before rendering their own content.

const PAGES = [
  { key: 'home', href: './index.html', label: 'Home' },
  { key: 'plans', href: './plans.html', label: 'Plan graphs' },
  { key: 'search', href: './search.html', label: 'Image search' },
  { key: 'ot', href: './ot.html', label: 'Transport' },
  { key: 'align', href: './align.html', label: 'Alignment' },
  { key: 'steer', href: './steer.html', label: 'Steering' },
  { key: 'collapse', href: './collapse.html', label: 'Model collapse' },
  { key: 'tiny', href: './tiny.html', label: 'tinyBenchmarks' },
  { key: 'xrm', href: './xrm.html', label: 'XRM' },
  { key: 'sketch', href: './sketch.html', label: 'Sketching' },
];

/** Fills <header id="site-header"> and <footer id="site-footer">, marking `current`. */
export function renderShell(current) {
  const header = document.getElementById('site-header');
  if (header) {
    const links = PAGES.map((page) => {
      const active = page.key === current;
      return `<a href="${page.href}"${active ? ' aria-current="page" class="active"' : ''}>${page.label}</a>`;
    }).join('');
    header.innerHTML = `
      <div class="header-inner">
        <a class="brand" href="./index.html"><span class="brand-mark" aria-hidden="true">◆</span>latentlab</a>
        <nav aria-label="Main">${links}</nav>
      </div>`;
  }
  const footer = document.getElementById('site-footer');
  if (footer) {
    footer.innerHTML = `
      <p>latentlab runs entirely in your browser (Rust compiled to WebAssembly). Nothing you
      type here leaves your device.</p>`;
  }
}
