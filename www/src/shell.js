// Shared page chrome: the site header with navigation, and the footer.
// Pages call renderShell('home' | 'plans' | 'search' | 'ot' | 'align' | 'steer' | 'collapse' | 'tiny' | 'xrm' | 'sketch' | 'repo' | 'elicit') before rendering their own content.

const PAGES = [
  { key: 'home', href: './index.html', label: 'Home' },
  { key: 'plans', href: './plans.html', label: 'Plans' },
  { key: 'search', href: './search.html', label: 'Search' },
  { key: 'ot', href: './ot.html', label: 'Transport' },
  { key: 'align', href: './align.html', label: 'Alignment' },
  { key: 'steer', href: './steer.html', label: 'Steering' },
  { key: 'collapse', href: './collapse.html', label: 'Collapse' },
  { key: 'tiny', href: './tiny.html', label: 'tinyBenchmarks' },
  { key: 'xrm', href: './xrm.html', label: 'XRM' },
  { key: 'sketch', href: './sketch.html', label: 'Sketching' },
  { key: 'repo', href: './repo.html', label: 'Retrieval' },
  { key: 'elicit', href: './elicit.html', label: 'Elicitation' },
];

/**
 * Fills <header id="site-header"> and <footer id="site-footer">, marking `current`. On a narrow
 * screen (style.css) the links fold behind a "Menu" button, a plain disclosure: the button says
 * whether the menu is open (aria-expanded) and Escape closes it.
 */
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
        <button type="button" class="nav-toggle" aria-expanded="false" aria-controls="site-nav"><span class="nav-toggle-icon" aria-hidden="true"></span>Menu</button>
        <nav id="site-nav" aria-label="Main">${links}</nav>
      </div>`;
    const toggle = header.querySelector('.nav-toggle');
    toggle.addEventListener('click', () => {
      toggle.setAttribute('aria-expanded', String(toggle.getAttribute('aria-expanded') !== 'true'));
    });
    header.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && toggle.getAttribute('aria-expanded') === 'true') {
        toggle.setAttribute('aria-expanded', 'false');
        toggle.focus();
      }
    });
  }
  const footer = document.getElementById('site-footer');
  if (footer) {
    footer.innerHTML = `
      <p>latentlab runs entirely in your browser (Rust compiled to WebAssembly). Nothing you
      type here leaves your device.</p>`;
  }
}
