// Parts of a page that refresh themselves while the page is shown (forms around them stay as
// the user left them).

let shown = 0;

/** A new page is shown: the refreshers of the one before stop. */
export function nextPage() {
  shown += 1;
}

/**
 * Fills `el` with what `fill()` returns (a Node), now and every `ms` while this page is
 * shown; errors show in place. Returns a function that refreshes it at once.
 */
export function live(el, fill, ms = 5000) {
  const page = shown;
  let timer;
  const run = async () => {
    clearTimeout(timer);
    if (page !== shown) return;
    try {
      const node = await fill();
      if (page !== shown) return;
      el.replaceChildren(node);
    } catch (e) {
      if (page !== shown) return;
      const p = document.createElement('p');
      p.className = 'error';
      p.textContent = e.message;
      el.replaceChildren(p);
    }
    if (page === shown && ms) timer = setTimeout(run, ms);
  };
  run();
  return run;
}
