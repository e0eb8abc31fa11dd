// The page's pure helpers (crates/hubbub/assets/js/util.js), without a
// browser: what counts as a mention, and the sentences shown for errors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mentions, roomKey, sentence } from '../../../crates/hubbub/assets/js/util.js';

describe('page helpers', () => {
  it('a mention is the nickname as a word of its own, in any case', () => {
    for (const text of ['ann', 'ann: hi', 'hi ann', 'hey, ANN!', '@ann look', 'is it (ann)?', 'ann\'s turn']) {
      assert.equal(mentions(text, 'ann'), true, text);
    }
    for (const text of ['annotations', 'joann', 'ann_2 says', 'ann-marie', 'banner', '']) {
      assert.equal(mentions(text, 'ann'), false, text);
    }
    assert.equal(mentions('ping zoë.', 'Zoë'), true, 'letters beyond ASCII');
    assert.equal(mentions('zoëlle', 'zoë'), false);
    assert.equal(mentions('anything', null), false, 'no nickname yet');
  });

  it('every error code the server sends is a sentence, never the raw code', () => {
    const codes = ['invalid_nick', 'nick_in_use', 'nick_registered', 'invalid_room', 'not_in_room', 'no_such_nick',
      'no_such_room', 'empty_message', 'too_large', 'invalid_text', 'flood', 'store_unavailable', 'cluster_unavailable',
      'too_many_rooms', 'too_many_joined', 'invalid_credentials', 'rate_limited', 'already_registered', 'not_logged_in',
      'insecure_connection', 'bad_password', 'accounts_unavailable', 'invalid_token', 'tokens_disabled', 'invalid_session',
      'timeout', 'offline', 'invite_only', 'registered_only', 'room_full', 'moderated', 'policy_full'];
    for (const code of codes) {
      const said = sentence({ code, message: `${code} happened` }, 'bob');
      if (code.includes('_')) assert.doesNotMatch(said, new RegExp(code), `${code}: ${said}`);
      assert.match(said, /^[A-Z].*[.!?]$/, `${code} is a sentence: ${said}`);
    }
    assert.equal(sentence({ code: 'no_such_nick', message: 'no such nickname: bob' }, 'bob'), 'Nobody called bob is here right now.');
    assert.equal(sentence({ code: 'invalid_nick', message: 'invalid nickname: too long' }), 'That nickname cannot be used: too long.');
    // Codes whose server message is already a sentence to the user: kept, capitalized.
    assert.equal(sentence({ code: 'not_operator', message: 'you are not an operator of games' }), 'You are not an operator of games.');
    assert.equal(sentence({ code: 'banned', message: 'you are banned from games: spam' }), 'You are banned from games: spam.');
    // A code the page does not know yet: the server's own words, as a sentence.
    assert.equal(sentence({ code: 'brand_new', message: 'something new went wrong' }), 'Something new went wrong.');
  });

  it('room names compare without their # and case', () => {
    assert.equal(roomKey('#Games'), 'games');
    assert.equal(roomKey('games'), roomKey('#GAMES'));
  });
});
