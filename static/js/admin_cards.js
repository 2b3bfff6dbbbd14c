// On a phone the admin's changelists show each row as a card (static/css/admin.css): each figure
// is labelled with its column's title, copied here because Django renders the cells without one.
document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("result_list");
  if (!table) return;
  const titles = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim().toLowerCase());
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, i) => {
      if (cell.tagName === "TD" && titles[i]) cell.dataset.label = titles[i];
    });
  }
});
