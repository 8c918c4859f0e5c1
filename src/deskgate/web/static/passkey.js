// Passkeys for the Command Center, with no dependency and no inline script (the CSP
// is default-src 'self'). The server sends WebAuthn options as JSON with base64url
// byte fields; navigator.credentials wants ArrayBuffers; the answer goes back as
// JSON with base64url fields again, in the shape deskgate.people.passkeys reads:
//   register(options) -> {id, rawId, type, response: {clientDataJSON, attestationObject, transports}}
//   assert(options)   -> {id, rawId, type, response: {clientDataJSON, authenticatorData, signature, userHandle}}
// Both take the options as an object or a JSON string and resolve to a plain object
// (JSON.stringify it to post); both reject when the person cancels or the browser refuses.
(function () {
  "use strict";

  function toBuffer(text) {
    if (typeof text !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(text)) {
      throw new TypeError("not base64url: " + String(text).slice(0, 40));
    }
    const b64 = text.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(b64 + "===".slice((b64.length + 3) % 4));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    if (buffer === null || buffer === undefined) return null;
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function parsed(options) {
    return typeof options === "string" ? JSON.parse(options) : JSON.parse(JSON.stringify(options));
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: toBuffer(c.id) });
    });
  }

  function common(credential) {
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
  }

  function need() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      throw new Error("this browser cannot use passkeys (WebAuthn needs https, or http://localhost)");
    }
  }

  async function register(optionsJSON) {
    need();
    const options = parsed(optionsJSON);
    options.challenge = toBuffer(options.challenge);
    options.user = Object.assign({}, options.user, { id: toBuffer(options.user.id) });
    options.excludeCredentials = descriptors(options.excludeCredentials);
    const credential = await navigator.credentials.create({ publicKey: options });
    if (!credential) throw new Error("no passkey was made");
    const r = credential.response;
    return Object.assign(common(credential), {
      response: {
        clientDataJSON: toText(r.clientDataJSON),
        attestationObject: toText(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : [],
      },
    });
  }

  async function assert(optionsJSON) {
    need();
    const options = parsed(optionsJSON);
    options.challenge = toBuffer(options.challenge);
    options.allowCredentials = descriptors(options.allowCredentials);
    const credential = await navigator.credentials.get({ publicKey: options });
    if (!credential) throw new Error("the passkey gave no answer");
    const r = credential.response;
    return Object.assign(common(credential), {
      response: {
        clientDataJSON: toText(r.clientDataJSON),
        authenticatorData: toText(r.authenticatorData),
        signature: toText(r.signature),
        userHandle: toText(r.userHandle),
      },
    });
  }

  window.deskgatePasskey = Object.freeze({ register: register, assert: assert });
})();
