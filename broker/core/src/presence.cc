#include "broker/core/presence.h"

#include <algorithm>
#include <utility>

namespace chorus::broker {

std::ostream& operator<<(std::ostream& os, const PresenceEntry& e) {
  return os << "{client=" << e.client << " user=" << e.user << " conn_info=" << e.conn_info
            << " chan_info=" << e.chan_info << " node=" << e.node << '/' << e.incarnation << '}';
}

const char* PresenceEventTypeName(PresenceEventType t) {
  switch (t) {
    case PresenceEventType::kJoin:
      return "join";
    case PresenceEventType::kLeave:
      return "leave";
    case PresenceEventType::kUserJoin:
      return "user_join";
    case PresenceEventType::kUserLeave:
      return "user_leave";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, const PresenceEvent& e) {
  return os << PresenceEventTypeName(e.type) << e.entry;
}

std::vector<PresenceEvent> ChannelPresence::Add(PresenceEntry entry) {
  std::vector<PresenceEvent> events;
  if (entry.client.empty()) return events;
  if (auto it = clients_.find(entry.client); it != clients_.end()) {
    if (it->second.user == entry.user) {
      it->second.conn_info = std::move(entry.conn_info);
      it->second.chan_info = std::move(entry.chan_info);
      it->second.node = entry.node;
      it->second.incarnation = entry.incarnation;
      return events;
    }
    events = Remove(entry.client);
  }
  const bool first_of_user = ++users_[entry.user] == 1;
  const auto [it, inserted] = clients_.emplace(entry.client, std::move(entry));
  events.push_back({PresenceEventType::kJoin, it->second});
  if (first_of_user) events.push_back({PresenceEventType::kUserJoin, it->second});
  return events;
}

std::vector<PresenceEvent> ChannelPresence::Remove(std::string_view client) {
  std::vector<PresenceEvent> events;
  const auto it = clients_.find(client);
  if (it == clients_.end()) return events;
  PresenceEntry entry = std::move(it->second);
  clients_.erase(it);
  const auto user = users_.find(entry.user);
  const bool last_of_user = --user->second == 0;
  if (last_of_user) users_.erase(user);
  events.push_back({PresenceEventType::kLeave, entry});
  if (last_of_user) events.push_back({PresenceEventType::kUserLeave, std::move(entry)});
  return events;
}

const PresenceEntry* ChannelPresence::Find(std::string_view client) const {
  const auto it = clients_.find(client);
  return it == clients_.end() ? nullptr : &it->second;
}

size_t ChannelPresence::ConnectionsOf(std::string_view user) const {
  const auto it = users_.find(user);
  return it == users_.end() ? 0 : it->second;
}

PresencePage ChannelPresence::Page(std::string_view cursor, size_t limit) const {
  limit = std::max<size_t>(limit, 1);
  PresencePage page;
  auto it = cursor.empty() ? clients_.begin() : clients_.upper_bound(cursor);
  for (; it != clients_.end() && page.entries.size() < limit; ++it) {
    page.entries.push_back(it->second);
  }
  if (it != clients_.end()) page.next_cursor = page.entries.back().client;
  return page;
}

std::vector<std::string> ChannelPresence::Users() const {
  std::vector<std::string> users;
  users.reserve(users_.size());
  for (const auto& [user, count] : users_) users.push_back(user);
  return users;
}

}  // namespace chorus::broker
