// Small behaviours on top of htmx. Every page works without this file.
"use strict";

// Polls marked data-poll="visible" skip their turn while the tab is hidden, and "unannounced" ones
// (the lists' rows) while a row polls for its own change. Said here, not as an hx-trigger filter
// ([...]): htmx evaluates a filter as code, which the Content-Security-Policy refuses.
document.addEventListener("htmx:beforeRequest", (event) => {
  const poll = (event.detail.elt.dataset.poll || "").split(" ");
  if ((poll.includes("visible") && document.visibilityState !== "visible")
      || (poll.includes("unannounced") && event.detail.elt.querySelector("tr[hx-get*=announce]"))) {
    event.preventDefault();
  }
});

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

// The log box shows its newest lines and follows new ones, unless the reader scrolled up
// to read older ones. The live panel is replaced every few seconds (hx-swap="outerHTML"),
// so the reader's position is noted before a swap and given to the new box after it.
const FOLLOW_SLACK = 24; // px from the bottom that still counts as "at the newest line"
let logPosition = null; // {atBottom, scrollTop} of the box being replaced

function logBox() {
  return document.querySelector("pre.log");
}

function followLog(box, position) {
  if (!box) return;
  if (!position || position.atBottom) {
    box.scrollTop = box.scrollHeight;
  } else {
    // The reader scrolled up: the box stays where it was.
    box.scrollTop = position.scrollTop;
  }
}

document.addEventListener("htmx:beforeSwap", () => {
  const box = logBox();
  logPosition = box && {
    atBottom: box.scrollHeight - box.scrollTop - box.clientHeight <= FOLLOW_SLACK,
    scrollTop: box.scrollTop,
  };
});

document.addEventListener("htmx:afterSwap", () => {
  followLog(logBox(), logPosition);
});

document.addEventListener("DOMContentLoaded", () => followLog(logBox(), null));
