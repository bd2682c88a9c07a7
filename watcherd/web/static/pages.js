// /tags: the filter box narrows the tag list as you type; empty fields stay out of the URL.
"use strict";
(function () {
  const box = document.getElementById("tag-filter");
  const list = document.getElementById("tag-list");
  const form = document.getElementById("tag-form");
  if (box && list) {
    box.addEventListener("input", () => {
      const text = box.value.trim().toLowerCase();
      for (const li of list.querySelectorAll("li[data-tag]")) {
        li.hidden = Boolean(text) && !li.dataset.tag.includes(text) && !li.querySelector("input:checked");
      }
    });
  }
  if (form) {
    form.addEventListener("submit", () => {
      for (const field of form.querySelectorAll("select")) field.disabled = !field.value;
    });
  }
})();
