/*
 * postMessage Platform Storage (1EdTech lti-pm-s v0.1) as a platform answers it.
 * Loaded by the course page (answers messages posted to window.parent) and by the
 * hidden storage frame named by lti_storage_target. Both windows are on the platform
 * origin, so the browser itself drops any message whose targetOrigin is another origin.
 * Data is kept per sending origin in the platform origin's sessionStorage, which
 * same-origin frames of one tab share, so a tool may put via one window and get via the other.
 */
(function (global) {
  'use strict';

  var KEY_LIMIT = 500;     // same limits as Canvas
  var CHAR_LIMIT = 4096;

  function memoryStorage() {
    var data = {};
    return {
      getItem: function (k) { return Object.prototype.hasOwnProperty.call(data, k) ? data[k] : null; },
      setItem: function (k, v) { data[k] = String(v); },
      removeItem: function (k) { delete data[k]; },
      key: function (i) { return Object.keys(data)[i] || null; },
      get length() { return Object.keys(data).length; }
    };
  }

  function install(win, options) {
    options = options || {};
    var storage = options.storage;
    if (!storage) {
      try { storage = win.sessionStorage; storage.setItem('lti|probe', '1'); storage.removeItem('lti|probe'); }
      catch (e) { storage = memoryStorage(); }
    }
    var prefix = 'lti|platform_storage|';
    var frameName = options.storageFrame || null;

    function log(entry) {
      if (!options.logUrl || typeof win.fetch !== 'function') { return; }
      entry.where = options.where || 'page';
      try {
        win.fetch(options.logUrl, {
          method: 'POST', keepalive: true,
          headers: {'Content-Type': 'application/json'},
          body: JSON.stringify(entry)
        });
      } catch (e) { /* logging must never break storage */ }
    }

    function usage(origin) {
      var keys = 0, chars = 0, start = prefix + origin + '|';
      for (var i = 0; i < storage.length; i++) {
        var k = storage.key(i);
        if (k && k.indexOf(start) === 0) {
          keys++;
          chars += k.length - start.length + String(storage.getItem(k)).length;
        }
      }
      return {keys: keys, chars: chars};
    }

    function respond(event, message, extra) {
      var reply = {subject: message.subject + '.response'};
      if (message.message_id !== undefined) { reply.message_id = message.message_id; }
      for (var k in extra) { if (Object.prototype.hasOwnProperty.call(extra, k)) { reply[k] = extra[k]; } }
      if (event.source && typeof event.source.postMessage === 'function') {
        event.source.postMessage(reply, event.origin);
      }
      log({direction: 'response', origin: event.origin, message: reply});
    }

    function fail(event, message, code, text) {
      respond(event, message, {error: {code: code, message: text}});
    }

    function handle(event) {
      var message = event.data;
      if (typeof message === 'string') {
        try { message = JSON.parse(message); } catch (e) { return; }
      }
      if (!message || typeof message !== 'object' || typeof message.subject !== 'string') { return; }
      if (/\.response$/.test(message.subject)) { return; }
      // D2L and older drafts prefix subjects with org.imsglobal.; answer those too.
      var subject = message.subject.replace(/^org\.imsglobal\./, '');
      if (subject.indexOf('lti.') !== 0) { return; }
      log({direction: 'request', origin: event.origin, message: message});
      if (subject === 'lti.capabilities') {
        var put = {subject: 'lti.put_data'}, get = {subject: 'lti.get_data'};
        if (frameName) { put.frame = frameName; get.frame = frameName; }
        respond(event, message, {supported_messages: [{subject: 'lti.capabilities'}, put, get]});
        return;
      }
      if (subject !== 'lti.put_data' && subject !== 'lti.get_data') {
        fail(event, message, 'unsupported_subject', 'Unsupported subject ' + message.subject);
        return;
      }
      if (typeof message.message_id !== 'string' && typeof message.message_id !== 'number') {
        fail(event, message, 'bad_request', "Missing required 'message_id' field");
        return;
      }
      if (typeof message.key !== 'string' || message.key === '') {
        fail(event, message, 'bad_request', "Missing required 'key' field");
        return;
      }
      var storageKey = prefix + event.origin + '|' + message.key;
      if (subject === 'lti.get_data') {
        respond(event, message, {key: message.key, value: storage.getItem(storageKey)});
        return;
      }
      if (message.value === undefined || message.value === null || message.value === '') {
        storage.removeItem(storageKey);
        respond(event, message, {key: message.key});
        return;
      }
      if (typeof message.value !== 'string') {
        fail(event, message, 'bad_request', "'value' must be a string");
        return;
      }
      var used = usage(event.origin);
      var previous = storage.getItem(storageKey);
      var growth = message.key.length + message.value.length;
      if (previous !== null) { used.keys--; used.chars -= message.key.length + previous.length; }
      if (used.keys + 1 > KEY_LIMIT || used.chars + growth > CHAR_LIMIT) {
        fail(event, message, 'storage_exhaustion', 'Reached the storage limit for this origin');
        return;
      }
      storage.setItem(storageKey, message.value);
      respond(event, message, {key: message.key, value: message.value});
    }

    win.addEventListener('message', handle);
    return {handle: handle, storage: storage};
  }

  global.LtiPlatformStorage = {install: install, memoryStorage: memoryStorage};
})(typeof window !== 'undefined' ? window : this);
