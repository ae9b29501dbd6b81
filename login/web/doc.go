// Package web holds the pages a person sees (sign-in, errors, the account
// page) as embedded html/template files, the static assets they use
// (app.css, app.js, SVG images), and the code that renders and serves them.
//
// Templates live in templates/. layout.html (and any file whose name starts
// with "_") is shared; every other file is one page, named by its base name
// without ".html" ("login", "error", "account"). Each page is parsed into its
// own template set together with the shared files, so the blocks a page
// defines ("content") never collide with another page's. A page is rendered
// by executing the "layout" template, which calls "content".
//
// The pages are built for a strict Content-Security-Policy
// (default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:):
// no inline scripts, no <style> elements, no style attributes. All styling is
// in static/app.css and all behaviour in static/app.js, which only enhances
// pages that work fully without JavaScript.
//
// Static assets are served by Static with long cache lifetimes; templates
// refer to them through the "asset" function, which appends a content hash
// (?v=…) so a new build is never hidden behind a cached old file.
package web
