// Small behaviours on top of htmx. Every page works without this file.
"use strict";

// A confirmation swapped into #dialog opens as a modal; Cancel and Escape close it.
document.addEventListener("htmx:afterSwap", (event) => {
  const dialog = event.detail.target;
  if (dialog && dialog.id === "dialog" && !dialog.open) {
    dialog.showModal();
  }
});

document.addEventListener("click", (event) => {
  if (event.target.closest("[data-close-dialog]")) {
    const dialog = event.target.closest("dialog");
    if (dialog) dialog.close();
  }
});
