// The API documentation pages (templates/api/docs.html, app/web/api_docs.py): starts Swagger UI or ReDoc on the
// app's /openapi.json. Their bundles are classic scripts loaded with `defer`, so they have run before this module.
const root = document.getElementById("api-docs");
const { viewer, openapiUrl } = root.dataset;

if (viewer === "swagger") {
  window.SwaggerUIBundle({
    url: openapiUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null, // no call to the public validator service
    presets: [window.SwaggerUIBundle.presets.apis],
  });
} else {
  // Its search runs in a worker made from a blob: URL, which the CSP refuses (script-src 'self'); the browser's
  // find-in-page does the same on this one page.
  window.Redoc.init(openapiUrl, { disableSearch: true }, root);
}
